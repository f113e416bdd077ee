// Simple-signing (GPG) signatures: an OpenPGP signed message (not detached; possibly compressed) whose
// literal data is the signed payload. Verified with openpgp.js against the policy's keys, as GnuPG does
// for containers/image: exactly one signature, by a key of the keyring (a signing subkey counts for its
// primary key), neither that key nor its primary expired or revoked now.
import * as openpgp from 'openpgp';

export interface Keyring {
  keys: openpgp.PublicKey[];
  /** Upper-case primary fingerprints, as containers/image names them. */
  fingerprints: string[];
}

const ARMOR_START = '-----BEGIN PGP PUBLIC KEY BLOCK-----';

/** Reads keys from files or data: binary keyrings, or one or more ASCII-armored blocks. */
export async function readKeyring(blobs: readonly Uint8Array[]): Promise<Keyring> {
  const keys: openpgp.PublicKey[] = [];
  for (const blob of blobs) {
    const text = Buffer.from(blob).toString('latin1');
    if (text.trimStart().startsWith(ARMOR_START)) {
      // openpgp.js reads the first armored block only: each block on its own.
      for (const block of text.split(ARMOR_START).slice(1)) {
        keys.push(...(await openpgp.readKeys({ armoredKeys: ARMOR_START + block })).map((k) => k.toPublic()));
      }
    } else {
      keys.push(...(await openpgp.readKeys({ binaryKeys: blob })).map((k) => k.toPublic()));
    }
  }
  if (keys.length === 0) throw new Error('no public keys');
  return { keys, fingerprints: keys.map((k) => k.getFingerprint().toUpperCase()) };
}

export interface VerifiedMessage {
  payload: Uint8Array;
  /** The signer's primary key fingerprint (upper case). */
  fingerprint: string;
}

/** Verifies a simple-signing blob; throws with the reason it is not accepted. */
export async function verifyGpgSignature(blob: Uint8Array, keyring: Keyring, now = new Date()): Promise<VerifiedMessage> {
  const message = await openpgp.readMessage({ binaryMessage: blob });
  const signingIds = message.getSigningKeyIDs();
  if (signingIds.length !== 1) throw new Error(`Unexpected GPG signature count ${signingIds.length}`);
  const key = keyring.keys.find((k) => k.getKeys(signingIds[0]).length > 0);
  if (!key) throw new Error(`the signature is by key ${signingIds[0].toHex().toUpperCase()}, which is not accepted`);
  const { data, signatures } = await openpgp.verify({ message, verificationKeys: [key], expectSigned: true, format: 'binary' });
  await signatures[0].verified;
  // openpgp.js judges keys at the signature's time; GnuPG (and so containers/image) also refuses a key
  // expired or revoked since.
  try {
    await key.getSigningKey(signingIds[0], now);
  } catch (err) {
    throw new Error(`key ${key.getFingerprint().toUpperCase()} cannot sign now: ${(err as Error).message}`);
  }
  return { payload: data, fingerprint: key.getFingerprint().toUpperCase() };
}
