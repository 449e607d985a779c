/**
 * A reader/writer semaphore modelled as counters (`mmap_lock`, `i_mmap_rwsem`). The model is
 * single-threaded: an actor that would block checks {@link RwSem.canRead} / {@link RwSem.canWrite}
 * and yields; taking a lock that is not available is a model bug and throws.
 */
export class RwSem {
  readonly name: string;
  readers: number;
  writer: boolean;
  /** Acquisitions (read + write), a count of the lock path running. */
  acquisitions: number;

  constructor(name: string) {
    this.name = name;
    this.readers = 0;
    this.writer = false;
    this.acquisitions = 0;
  }

  get canRead(): boolean {
    return !this.writer;
  }

  get canWrite(): boolean {
    return !this.writer && this.readers === 0;
  }

  get locked(): boolean {
    return this.writer || this.readers > 0;
  }

  downRead(): void {
    if (this.writer) throw new Error(`${this.name}: read lock while write-locked`);
    this.readers++;
    this.acquisitions++;
  }

  upRead(): void {
    if (this.readers <= 0) throw new Error(`${this.name}: read unlock without a reader`);
    this.readers--;
  }

  downWrite(): void {
    if (!this.canWrite) throw new Error(`${this.name}: write lock while held`);
    this.writer = true;
    this.acquisitions++;
  }

  upWrite(): void {
    if (!this.writer) throw new Error(`${this.name}: write unlock without the writer`);
    this.writer = false;
  }
}
