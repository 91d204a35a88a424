// Signing an approval in the browser: the approver's Ed25519 private key (the PEM file of
// `tether approvals keygen`) is imported with WebCrypto, kept in memory for this tab only
// (never stored, never sent), and signs the exact bytes the server says the decision covers.
import { get } from "./api.js";

const keys = new Map(); // approver -> CryptoKey (non-extractable)

export function hasKey(approver) {
  return keys.has(approver);
}

export async function loadKey(approver, pemText) {
  const body = pemText.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "");
  if (!/PRIVATE KEY/.test(pemText) || !body) throw new Error("That is not a PEM private key; use the file `tether approvals keygen --out FILE` wrote.");
  let der;
  try {
    der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  } catch {
    throw new Error("The key file is not valid PEM (bad base64).");
  }
  if (!crypto.subtle) throw new Error("This browser has no WebCrypto here (it needs https or localhost); paste a signature token instead.");
  try {
    keys.set(approver, await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]));
  } catch (err) {
    throw new Error(`The key could not be read as an Ed25519 private key (${err.message || err}).`);
  }
}

function b64urlPadded(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_");
}

/** The signature token (ed25519:<expires_at>:<base64url>) of `decision` by `approver`. */
export async function signDecision(approvalId, approver, decision) {
  const key = keys.get(approver);
  if (!key) throw new Error(`No key loaded for ${approver}: choose the key file first.`);
  const p = await get(`/v1/approvals/${encodeURIComponent(approvalId)}/signing-payload?decision=${decision}`);
  const bytes = Uint8Array.from(atob(p.payload), (c) => c.charCodeAt(0));
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, key, bytes);
  return `ed25519:${formatFloat(p.expires_at)}:${b64urlPadded(sig)}`;
}

function formatFloat(x) {
  const s = String(x);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}
