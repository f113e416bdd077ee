// Compensating cleanup for multi-step operations (RunPodSandbox, CreateContainer): each finished step
// registers its undo; when a later step fails they run in reverse, and one failing does not stop the rest.

export type Undo = () => Promise<void>;

export async function rollBack(steps: Undo[], onError: (err: unknown) => void): Promise<void> {
  for (const step of [...steps].reverse()) await step().catch(onError);
}
