// Registry authentication: WWW-Authenticate parsing, credentials from docker/containers config
// files and credential helpers, Basic and Bearer (token server) answers. (The redactor is core/redact.ts.)
export { type Challenge, parseWwwAuthenticate } from './challenge.ts';
export type { Credential, CredentialStore } from './credential.ts';
export { authFilePaths, type CredentialStoreOptions, loadCredentialStore } from './credential-store.ts';
export { type AuthRequest, basicHeader } from './token.ts';
export { Authenticator, type AuthenticatorOptions } from './authenticator.ts';
export { normalizeScopes } from './scopes.ts';
export { canonicalRegistry } from './registry-keys.ts';
