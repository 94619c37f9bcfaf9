// Just enough of the DNS wire format (RFC 1035) for a sink (pure): read the question of a query,
// write an answer with one A record, an empty answer (NODATA) or NXDOMAIN.

export interface DnsQuestion {
  id: number;
  /** Recursion desired, echoed back. */
  rd: boolean;
  /** Lowercase, no trailing dot. */
  name: string;
  qtype: number;
  qclass: number;
  /** The question section as received (echoed into the answer). */
  question: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 35: 'NAPTR',
  43: 'DS', 48: 'DNSKEY', 64: 'SVCB', 65: 'HTTPS', 255: 'ANY', 257: 'CAA',
};

export function typeName(qtype: number): string {
  return TYPE_NAMES[qtype] ?? `TYPE${qtype}`;
}

/** The question of a query, or undefined when the message is not a well-formed query. */
export function parseQuery(msg: Uint8Array): DnsQuestion | undefined {
  if (msg.length < 17) return undefined;
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const id = view.getUint16(0);
  const flags = view.getUint16(2);
  if (flags & 0x8000) return undefined; // a response, not a query
  if (view.getUint16(4) < 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (let guard = 0; guard < 128; guard++) {
    if (off >= msg.length) return undefined;
    const len = msg[off]!;
    if (len === 0) {
      off++;
      break;
    }
    if (len > 63 || off + 1 + len > msg.length) return undefined; // compression never appears in a question
    labels.push(Buffer.from(msg.subarray(off + 1, off + 1 + len)).toString('latin1'));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return undefined;
  const qtype = view.getUint16(off);
  const qclass = view.getUint16(off + 2);
  return { id, rd: (flags & 0x0100) !== 0, name: labels.join('.').toLowerCase(), qtype, qclass, question: msg.subarray(12, off + 4) };
}

export type DnsAnswer = { a: string } | 'nodata' | 'nxdomain';

/** The response to `q`: one A record (TTL 5 s), no records, or NXDOMAIN. */
export function buildResponse(q: DnsQuestion, answer: DnsAnswer, ttl = 5): Uint8Array {
  const withA = typeof answer === 'object' && q.qtype === 1;
  const rcode = answer === 'nxdomain' ? 3 : 0;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, opcode 0, AA, RD as asked, RA, rcode
  header.writeUInt16BE(0x8000 | 0x0400 | (q.rd ? 0x0100 : 0) | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(withA ? 1 : 0, 6);
  const parts: Uint8Array[] = [header, q.question];
  if (withA) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the name in the question
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(4, 10);
    (answer as { a: string }).a.split('.').forEach((o, i) => (rr[12 + i] = Number(o)));
    parts.push(rr);
  }
  return Buffer.concat(parts);
}

/** A query for tests and probes: one question, recursion desired. */
export function buildQuery(id: number, name: string, qtype: number): Uint8Array {
  const labels = name.split('.').filter((l) => l !== '');
  const q = Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0]),
    Buffer.from([qtype >> 8, qtype & 0xff, 0, 1]),
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, q]);
}
