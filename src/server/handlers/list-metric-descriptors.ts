import type { ListMetricDescriptorsRequest__Output } from '../../generated/runtime/v1/ListMetricDescriptorsRequest';
import type { ListMetricDescriptorsResponse } from '../../generated/runtime/v1/ListMetricDescriptorsResponse';
import type { UnaryHandler } from '../instrument';
import type { ServerDeps } from '../deps';
import { METRIC_DESCRIPTORS } from './pod-metrics';

/** The metrics ListPodSandboxMetrics reports (pod-metrics.ts): the same for berthd's whole life. */
export function listMetricDescriptors(_deps: ServerDeps): UnaryHandler<ListMetricDescriptorsRequest__Output, ListMetricDescriptorsResponse> {
  return async () => ({ descriptors: METRIC_DESCRIPTORS });
}
