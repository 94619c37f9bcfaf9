// What the sandbox's DNS sink answers (pure). Every name gets an address of its own from a
// benchmarking range (198.18.0.0/16) that is routed to the sink link and refused there, so the
// connection that follows a lookup is recorded too and can be tied back to the name. Names the
// user allowed get an address from 198.19.0.0/16, which nftables redirects to the forwarder.

import type { DnsAnswer, DnsQuestion } from './dns-wire.ts';

export type DnsMode = 'sink' | 'nxdomain';

export interface SinkDecision {
  answer: DnsAnswer;
  /** The address answered, when one was. */
  address?: string;
  allowed: boolean;
}

const SINK_POOL = [198, 18];
const POOL_SIZE = 65_534;

/** The n-th sink address (n ≥ 1): 198.18.0.1, …, 198.18.255.254. */
export function sinkAddress(n: number): string {
  const i = ((n - 1) % POOL_SIZE) + 1;
  return `${SINK_POOL[0]}.${SINK_POOL[1]}.${i >> 8}.${i & 0xff}`;
}

/** The address an allowed name resolves to inside the sandbox (index from 0). */
export function allowAddress(index: number): string {
  const i = index + 1;
  return `198.19.${i >> 8}.${i & 0xff}`;
}

export class SinkAnswers {
  readonly #mode: DnsMode;
  readonly #allowed: Map<string, string>;
  readonly #assigned = new Map<string, string>();
  #next = 1;

  /** `allowed`: lowercase name → the address it answers with. */
  constructor(mode: DnsMode, allowed: Map<string, string>) {
    this.#mode = mode;
    this.#allowed = allowed;
  }

  decide(q: DnsQuestion): SinkDecision {
    const allowedAddress = this.#allowed.get(q.name);
    if (allowedAddress !== undefined) {
      return q.qtype === 1 ? { answer: { a: allowedAddress }, address: allowedAddress, allowed: true } : { answer: 'nodata', allowed: true };
    }
    if (this.#mode === 'nxdomain' || q.name === '' || q.qclass !== 1) return { answer: 'nxdomain', allowed: false };
    // IPv6 and every other type: no records, so clients fall back to A and connect to the sink.
    if (q.qtype !== 1) return { answer: 'nodata', allowed: false };
    let address = this.#assigned.get(q.name);
    if (address === undefined) {
      address = sinkAddress(this.#next++);
      this.#assigned.set(q.name, address);
    }
    return { answer: { a: address }, address, allowed: false };
  }
}
