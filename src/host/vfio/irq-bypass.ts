/**
 * The IRQ bypass manager: producers (a VFIO MSI vector: its host irq) and consumers (a KVM irqfd)
 * register independently and are connected when their tokens match (the eventfd context both
 * sides hold). Connecting calls the consumer's `addProducer` (KVM: map the host irq straight to
 * the guest irq); disconnecting calls `delProducer`.
 *
 * @remarks Models virt/lib/irqbypass.c (the list-based version, Linux 4.4–6.x).
 */

import { EBUSY, EINVAL } from '../errno.ts';

/** `struct irq_bypass_producer`. `token` is compared by identity. */
export interface IrqBypassProducer {
  token: unknown;
  /** Host irq (the VFIO vector's virq). */
  irq: number;
  addConsumer: ((prod: IrqBypassProducer, cons: IrqBypassConsumer) => number) | null;
  delConsumer: ((prod: IrqBypassProducer, cons: IrqBypassConsumer) => void) | null;
  stop: ((prod: IrqBypassProducer) => void) | null;
  start: ((prod: IrqBypassProducer) => void) | null;
}

/** `struct irq_bypass_consumer`. */
export interface IrqBypassConsumer {
  token: unknown;
  addProducer: ((cons: IrqBypassConsumer, prod: IrqBypassProducer) => number) | null;
  delProducer: ((cons: IrqBypassConsumer, prod: IrqBypassProducer) => void) | null;
  stop: ((cons: IrqBypassConsumer) => void) | null;
  start: ((cons: IrqBypassConsumer) => void) | null;
}

/** Counters: connects made, connects that failed, disconnects. */
export class IrqBypassStats {
  connects = 0;
  connectFailures = 0;
  disconnects = 0;
}

/**
 * The manager's two lists under its mutex (the model is single-threaded at this level; the
 * actors that interleave do so around these calls, never inside).
 */
export class IrqBypassManager {
  readonly producers: IrqBypassProducer[];
  readonly consumers: IrqBypassConsumer[];
  readonly stats: IrqBypassStats;

  constructor() {
    this.producers = [];
    this.consumers = [];
    this.stats = new IrqBypassStats();
  }

  /** @remarks Models irqbypass.c:__connect(). */
  private connect(prod: IrqBypassProducer, cons: IrqBypassConsumer): number {
    let ret = 0;
    prod.stop?.(prod);
    cons.stop?.(cons);
    if (prod.addConsumer) ret = prod.addConsumer(prod, cons);
    if (!ret) {
      ret = cons.addProducer!(cons, prod);
      if (ret && prod.delConsumer) prod.delConsumer(prod, cons);
    }
    cons.start?.(cons);
    prod.start?.(prod);
    if (ret) this.stats.connectFailures++;
    else this.stats.connects++;
    return ret;
  }

  /** @remarks Models irqbypass.c:__disconnect(). */
  private disconnect(prod: IrqBypassProducer, cons: IrqBypassConsumer): void {
    prod.stop?.(prod);
    cons.stop?.(cons);
    cons.delProducer!(cons, prod);
    prod.delConsumer?.(prod, cons);
    cons.start?.(cons);
    prod.start?.(prod);
    this.stats.disconnects++;
  }

  /**
   * Add a producer and connect it to the consumer with the same token, if any. −EINVAL without a
   * token; −EBUSY if the token or the producer is already registered; a failed connect's error
   * (the producer is then not added).
   *
   * @remarks Models irqbypass.c:irq_bypass_register_producer().
   */
  irqBypassRegisterProducer(producer: IrqBypassProducer): number {
    if (producer.token === null || producer.token === undefined) return -EINVAL;
    for (const p of this.producers) if (p.token === producer.token || p === producer) return -EBUSY;
    for (const c of this.consumers) {
      if (c.token === producer.token) {
        const ret = this.connect(producer, c);
        if (ret) return ret;
        break;
      }
    }
    this.producers.push(producer);
    return 0;
  }

  /**
   * Remove a producer, disconnecting it from its consumer. Unknown producers are ignored.
   *
   * @remarks Models irqbypass.c:irq_bypass_unregister_producer().
   */
  irqBypassUnregisterProducer(producer: IrqBypassProducer): void {
    if (producer.token === null || producer.token === undefined) return;
    const i = this.producers.indexOf(producer);
    if (i < 0) return;
    for (const c of this.consumers) {
      if (c.token === producer.token) {
        this.disconnect(producer, c);
        break;
      }
    }
    this.producers.splice(i, 1);
  }

  /**
   * Add a consumer and connect it to the producer with the same token, if any. −EINVAL without a
   * token or without add/del_producer; −EBUSY if already registered (token or object).
   *
   * @remarks Models irqbypass.c:irq_bypass_register_consumer().
   */
  irqBypassRegisterConsumer(consumer: IrqBypassConsumer): number {
    if (consumer.token === null || consumer.token === undefined) return -EINVAL;
    if (!consumer.addProducer || !consumer.delProducer) return -EINVAL;
    for (const c of this.consumers) if (c.token === consumer.token || c === consumer) return -EBUSY;
    for (const p of this.producers) {
      if (p.token === consumer.token) {
        const ret = this.connect(p, consumer);
        if (ret) return ret;
        break;
      }
    }
    this.consumers.push(consumer);
    return 0;
  }

  /**
   * Remove a consumer, disconnecting it from its producer. Unknown consumers are ignored.
   *
   * @remarks Models irqbypass.c:irq_bypass_unregister_consumer().
   */
  irqBypassUnregisterConsumer(consumer: IrqBypassConsumer): void {
    if (consumer.token === null || consumer.token === undefined) return;
    const i = this.consumers.indexOf(consumer);
    if (i < 0) return;
    for (const p of this.producers) {
      if (p.token === consumer.token) {
        this.disconnect(p, consumer);
        break;
      }
    }
    this.consumers.splice(i, 1);
  }

  /** The producer connected to `consumer` (same token), or null. */
  producerOf(consumer: IrqBypassConsumer): IrqBypassProducer | null {
    for (const p of this.producers) if (p.token === consumer.token) return p;
    return null;
  }
}
