import { describe, expect, it } from 'vitest';
import {
  type IrqBypassConsumer,
  IrqBypassManager,
  type IrqBypassProducer,
} from '../../../../src/host/vfio/irq-bypass.ts';

function producer(token: unknown, log: string[], addRet = 0): IrqBypassProducer {
  return {
    token,
    irq: 42,
    addConsumer: () => {
      log.push('p.add');
      return addRet;
    },
    delConsumer: () => log.push('p.del'),
    stop: () => log.push('p.stop'),
    start: () => log.push('p.start'),
  };
}

function consumer(token: unknown, log: string[], addRet = 0): IrqBypassConsumer {
  return {
    token,
    addProducer: (_c, p) => {
      log.push(`c.add(${p.irq})`);
      return addRet;
    },
    delProducer: () => log.push('c.del'),
    stop: () => log.push('c.stop'),
    start: () => log.push('c.start'),
  };
}

describe('irq bypass manager (irqbypass.c)', () => {
  it('pairs by token whichever registers first, with the __connect / __disconnect call order', () => {
    const m = new IrqBypassManager();
    const log: string[] = [];
    const tok = {};
    expect(m.irqBypassRegisterProducer(producer(tok, log))).toBe(0);
    expect(log).toEqual([]);
    const c = consumer(tok, log);
    expect(m.irqBypassRegisterConsumer(c)).toBe(0);
    expect(log).toEqual(['p.stop', 'c.stop', 'p.add', 'c.add(42)', 'c.start', 'p.start']);
    log.length = 0;
    m.irqBypassUnregisterConsumer(c);
    expect(log).toEqual(['p.stop', 'c.stop', 'c.del', 'p.del', 'c.start', 'p.start']);
    expect(m.consumers).toEqual([]);
    log.length = 0;
    // Consumer first, then producer; unregistering the producer disconnects.
    const m2 = new IrqBypassManager();
    const c2 = consumer(tok, log);
    expect(m2.irqBypassRegisterConsumer(c2)).toBe(0);
    const p2 = producer(tok, log);
    expect(m2.irqBypassRegisterProducer(p2)).toBe(0);
    expect(m2.producerOf(c2)).toBe(p2);
    m2.irqBypassUnregisterProducer(p2);
    expect(m2.producerOf(c2)).toBe(null);
    expect(m2.stats.connects).toBe(1);
    expect(m2.stats.disconnects).toBe(1);
  });

  it('errors: no token -EINVAL, consumer without add/del -EINVAL, duplicates -EBUSY; a failed connect is not registered', () => {
    const m = new IrqBypassManager();
    const log: string[] = [];
    expect(m.irqBypassRegisterProducer(producer(null, log))).toBe(-22);
    expect(m.irqBypassRegisterConsumer(consumer(null, log))).toBe(-22);
    expect(m.irqBypassRegisterConsumer({ ...consumer({}, log), delProducer: null })).toBe(-22);
    const t = {};
    const p = producer(t, log);
    expect(m.irqBypassRegisterProducer(p)).toBe(0);
    expect(m.irqBypassRegisterProducer(p)).toBe(-16);
    expect(m.irqBypassRegisterProducer(producer(t, log))).toBe(-16);
    const c = consumer({}, log);
    expect(m.irqBypassRegisterConsumer(c)).toBe(0);
    expect(m.irqBypassRegisterConsumer(c)).toBe(-16);
    // add_producer fails: prod.del_consumer undoes add_consumer; the consumer stays out.
    log.length = 0;
    const c3 = consumer(t, log, -5);
    expect(m.irqBypassRegisterConsumer(c3)).toBe(-5);
    expect(log).toEqual(['p.stop', 'c.stop', 'p.add', 'c.add(42)', 'p.del', 'c.start', 'p.start']);
    expect(m.consumers.includes(c3)).toBe(false);
    expect(m.stats.connectFailures).toBe(1);
    // add_consumer fails: add_producer is not called.
    log.length = 0;
    const m2 = new IrqBypassManager();
    const t2 = {};
    m2.irqBypassRegisterConsumer(consumer(t2, log));
    expect(m2.irqBypassRegisterProducer(producer(t2, log, -1))).toBe(-1);
    expect(log).toEqual(['p.stop', 'c.stop', 'p.add', 'c.start', 'p.start']);
    expect(m2.producers).toEqual([]);
    // Unknown objects are ignored on unregister.
    m2.irqBypassUnregisterProducer(producer({}, log));
    m2.irqBypassUnregisterConsumer(consumer({}, log));
  });
});
