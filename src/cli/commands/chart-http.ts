// The chart repository client for lock and pack, with the same TLS flags as the registry client
// (--ca-file, --certs-dir, --insecure), so one set of flags covers every host a spec names.
import { DEFAULT_CERTS_DIRS } from '../../registry/tls.ts';
import { ChartHttpClient } from '../../helm/http-client.ts';

export function makeChartHttp(values: Record<string, unknown>): ChartHttpClient {
  return new ChartHttpClient({
    caFile: values['ca-file'] as string | undefined,
    certsDirs: (values['certs-dir'] as string[] | undefined) ?? [...DEFAULT_CERTS_DIRS],
    insecure: (values.insecure as string[] | undefined) ?? [],
  });
}
