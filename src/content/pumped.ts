// A stream as a PumpedBody, for sources without a pump of their own (a local file, undici's body).
import type { Readable } from 'node:stream';
import type { PumpedBody } from './types.ts';

export function pumpedStream(stream: Readable): PumpedBody {
  return {
    pump: async (sink) => {
      for await (const chunk of stream) {
        const wait = sink(chunk as Buffer);
        if (wait !== undefined) await wait;
      }
    },
    cancel: () => stream.destroy(),
  };
}
