/**
 * Governance tokens: apex_judge's verdict for one governed session, signed
 * with Ed25519 so seal_vault (in this or any other process holding the key)
 * can check it was issued here, for that session, and has not expired.
 * Format: base64url(JSON payload) "." base64url(signature).
 */

/** What a token asserts. */
export interface TokenPayload {
  readonly v: 1;
  readonly session_id: string;
  readonly verdict: string;
  /** Hex SHA-256 of the floor scores the verdict rests on. */
  readonly floors_digest: string;
  readonly issued_at: number;
  readonly expires_at: number;
}

/** Raised for a token that is malformed, forged, expired or for another session. */
export class TokenError extends Error {
  override name = "TokenError";
}

/** Signs and checks governance tokens. */
export interface TokenService {
  issue(
    input: { sessionId: string; verdict: string; floorsDigest: string; ttlSeconds?: number },
  ): Promise<string>;
  verify(token: string, sessionId: string): Promise<TokenPayload>;
}

function b64url(bytes: Uint8Array): string {
  return (bytes as Uint8Array<ArrayBuffer>).toBase64({ alphabet: "base64url", omitPadding: true });
}

function fromB64url(text: string): Uint8Array {
  return Uint8Array.fromBase64(text, { alphabet: "base64url" });
}

const DOMAIN = "warden-governance-token/v1\n";

/** Creates the service over an Ed25519 key pair (the vault's signing key). */
export function createTokenService(
  keys: { privateKey: CryptoKey; publicKey: Uint8Array },
  options: { now?: () => number } = {},
): TokenService {
  const now = options.now ?? Date.now;
  const encoder = new TextEncoder();
  let verifyKey: Promise<CryptoKey> | undefined;
  return {
    async issue(input) {
      const issued = now();
      const payload: TokenPayload = {
        v: 1,
        session_id: input.sessionId,
        verdict: input.verdict,
        floors_digest: input.floorsDigest,
        issued_at: issued,
        expires_at: issued + (input.ttlSeconds ?? 900) * 1000,
      };
      const body = encoder.encode(JSON.stringify(payload));
      const signature = new Uint8Array(
        await crypto.subtle.sign("Ed25519", keys.privateKey, encoder.encode(DOMAIN + b64url(body))),
      );
      return `${b64url(body)}.${b64url(signature)}`;
    },
    async verify(token, sessionId) {
      const parts = typeof token === "string" ? token.split(".") : [];
      if (parts.length !== 2 || token.length > 4096) {
        throw new TokenError("governance_token is malformed");
      }
      let signature: Uint8Array;
      let payload: TokenPayload;
      try {
        signature = fromB64url(parts[1]);
        payload = JSON.parse(new TextDecoder().decode(fromB64url(parts[0])));
      } catch {
        throw new TokenError("governance_token is malformed");
      }
      verifyKey ??= crypto.subtle.importKey(
        "raw",
        keys.publicKey as Uint8Array<ArrayBuffer>,
        "Ed25519",
        false,
        ["verify"],
      );
      const ok = await crypto.subtle.verify(
        "Ed25519",
        await verifyKey,
        signature as Uint8Array<ArrayBuffer>,
        encoder.encode(DOMAIN + parts[0]),
      );
      if (!ok) throw new TokenError("governance_token signature does not verify");
      if (payload.v !== 1) throw new TokenError("governance_token version is not supported");
      if (payload.session_id !== sessionId) {
        throw new TokenError(
          `governance_token was issued for another session (${payload.session_id})`,
        );
      }
      if (now() > payload.expires_at) throw new TokenError("governance_token has expired");
      return payload;
    },
  };
}
