// The Daytona API key lives in VS Code's SecretStorage, never in settings.json, and is never logged.
import * as vscode from "vscode";

export const API_KEY_SECRET = "daytona.apiKey";

export class ApiKeyStore implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<void>();
  /** Fires when the stored key changes (in this window or another one). */
  readonly onDidChange = this.emitter.event;
  private readonly subscription: vscode.Disposable;
  private cached: string | undefined;

  constructor(private readonly secrets: vscode.SecretStorage) {
    this.subscription = secrets.onDidChange((e) => {
      if (e.key === API_KEY_SECRET) {
        // A change made through set()/clear() here was already applied (and acted on) by its caller.
        const before = this.cached;
        void this.get().then((after) => {
          if (after !== before) this.emitter.fire();
        });
      }
    });
  }

  async get(): Promise<string | undefined> {
    this.cached = (await this.secrets.get(API_KEY_SECRET)) || undefined;
    return this.cached;
  }

  /** The last key read (for redacting logs synchronously). */
  get known(): string | undefined {
    return this.cached;
  }

  async set(key: string): Promise<void> {
    this.cached = key;
    await this.secrets.store(API_KEY_SECRET, key);
  }

  async clear(): Promise<void> {
    this.cached = undefined;
    await this.secrets.delete(API_KEY_SECRET);
  }

  dispose(): void {
    this.subscription.dispose();
    this.emitter.dispose();
  }
}

/** An input-box validator: a key is one line of printable characters without spaces. */
export function validateApiKey(value: string): string | undefined {
  const key = value.trim();
  if (!key) return "Enter the API key (from the Daytona dashboard → Keys).";
  if (/\s/.test(key)) return "An API key contains no spaces or line breaks.";
  if (key.length < 8) return "That is too short to be a Daytona API key.";
  return undefined;
}
