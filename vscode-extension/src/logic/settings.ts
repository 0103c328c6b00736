// The `daytona.*` settings the server receives: everything under `daytona` except the extension's own keys.

/** Keys under `daytona.` that only the extension reads (how to start the server); never sent to the server. */
export const EXTENSION_ONLY_KEYS: readonly string[] = ["server", "trace"];

/** A plain JSON copy of a configuration section without the extension-only keys. */
export function serverSettings(section: unknown): Record<string, unknown> {
  if (!section || typeof section !== "object") return {};
  const plain = JSON.parse(JSON.stringify(section)) as Record<string, unknown>;
  for (const key of EXTENSION_ONLY_KEYS) delete plain[key];
  return plain;
}

/** Whether a change to one of these settings needs a server restart rather than a didChangeConfiguration. */
export const RESTART_SETTINGS: readonly string[] = ["daytona.server"];
