// The CRI's NamespaceMode names and berth's, both ways (pods' and containers' namespace options).
import type { NamespaceMode__Output } from '../../generated/runtime/v1/NamespaceMode';
import type { NamespaceMode } from '../../pod/sandbox';

export const MODES: Record<NamespaceMode__Output, NamespaceMode> = { POD: 'pod', CONTAINER: 'container', NODE: 'node', TARGET: 'target' };
export const CRI_MODES = { pod: 'POD', container: 'CONTAINER', node: 'NODE', target: 'TARGET' } as const;
