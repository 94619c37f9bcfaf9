// What a credential source can hand over for one registry.

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker's `identitytoken`): exchanged at the token server by POST. */
  identityToken?: string;
  /** A bearer token for the registry itself (docker's `registrytoken`): sent as is. */
  registryToken?: string;
}

export interface CredentialStore {
  /** Credentials for `registry` (host[:port], `docker.io` for Docker Hub), or undefined when none are configured. */
  get(registry: string): Promise<Credential | undefined>;
}
