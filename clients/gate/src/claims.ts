import { mkdir, open, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Which decided requests a gate has already acted on, so that one approval runs one call. A gated call's idempotency
 * key is derived from the call (`<base>-<generation>`): the same call finds the same request again, which is how an
 * undecided call resumes. Once a decision has been acted on (forwarded, or told to the agent), its generation is
 * claimed by creating a marker file with O_EXCL, which exactly one process (and one call) can do; the next identical
 * call then derives the next generation, a new request. Files, not memory, so a gateway restart or the next hook
 * process never runs an old approval again.
 */
export class ClaimStore {
  constructor(readonly dir: string) {}

  /** `GUARD_STATE_DIR`, else `$XDG_STATE_HOME/slack-guard`, else `~/.local/state/slack-guard`. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): ClaimStore {
    const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
    return new ClaimStore(env.GUARD_STATE_DIR || join(base, 'slack-guard'));
  }

  /** The first generation of `base` nobody has claimed. */
  async current(base: string): Promise<number> {
    let generation = 0;
    while (await exists(this.marker(base, generation))) generation += 1;
    return generation;
  }

  /** True for the one caller that claims this generation; false when another got there first. */
  async claim(base: string, generation: number, note: string): Promise<boolean> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    try {
      const file = await open(this.marker(base, generation), 'wx', 0o600);
      await file.writeFile(`${JSON.stringify({ at: new Date().toISOString(), note })}\n`);
      await file.close();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  private marker(base: string, generation: number): string {
    return join(this.dir, `${base}.${generation}.claimed`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
