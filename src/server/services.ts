// The handler tables of the two CRI services: one small handler per RPC, each in its own file.
// An RPC absent here answers UNIMPLEMENTED through the instrument wrapper.
import type { RuntimeServiceHandlers } from '../generated/runtime/v1/RuntimeService';
import type { ImageServiceHandlers } from '../generated/runtime/v1/ImageService';
import type { Handlers } from './instrument';
import type { ServerDeps } from './deps';
import { version } from './handlers/version';
import { status } from './handlers/status';
import { runtimeConfig } from './handlers/runtime-config';
import { runPodSandbox } from './handlers/run-pod-sandbox';
import { stopPodSandbox } from './handlers/stop-pod-sandbox';
import { removePodSandbox } from './handlers/remove-pod-sandbox';
import { podSandboxStatus } from './handlers/pod-sandbox-status';
import { listPodSandbox } from './handlers/list-pod-sandbox';
import { updateRuntimeConfig } from './handlers/update-runtime-config';
import { createContainer } from './handlers/create-container';
import { startContainer } from './handlers/start-container';
import { stopContainer } from './handlers/stop-container';
import { removeContainer } from './handlers/remove-container';
import { containerStatus } from './handlers/container-status';
import { listContainers } from './handlers/list-containers';
import { updateContainerResources } from './handlers/update-container-resources';
import { reopenContainerLog } from './handlers/reopen-container-log';
import { checkpointContainer } from './handlers/checkpoint-container';
import { execSync } from './handlers/exec-sync';
import { containerStats } from './handlers/container-stats';
import { listContainerStats } from './handlers/list-container-stats';
import { podSandboxStats } from './handlers/pod-sandbox-stats';
import { listPodSandboxStats } from './handlers/list-pod-sandbox-stats';
import { exec } from './handlers/exec';
import { attach } from './handlers/attach';
import { portForward } from './handlers/port-forward';
import { listImages } from './handlers/list-images';
import { imageStatus } from './handlers/image-status';
import { removeImage } from './handlers/remove-image';
import { imageFsInfo } from './handlers/image-fs-info';
import { pullImage } from './handlers/pull-image';
import { getContainerEvents } from './handlers/get-container-events';
import { streamPodSandboxes } from './handlers/stream-pod-sandboxes';
import { streamContainers } from './handlers/stream-containers';
import { streamContainerStats } from './handlers/stream-container-stats';
import { streamPodSandboxStats } from './handlers/stream-pod-sandbox-stats';
import { streamImages } from './handlers/stream-images';
import { updatePodSandboxResources } from './handlers/update-pod-sandbox-resources';
import { listMetricDescriptors } from './handlers/list-metric-descriptors';
import { listPodSandboxMetrics } from './handlers/list-pod-sandbox-metrics';
import { streamPodSandboxMetrics } from './handlers/stream-pod-sandbox-metrics';

export function runtimeHandlers(deps: ServerDeps): Handlers<RuntimeServiceHandlers> {
  return {
    Version: version(deps),
    Status: status(deps),
    RuntimeConfig: runtimeConfig(deps),
    RunPodSandbox: runPodSandbox(deps),
    StopPodSandbox: stopPodSandbox(deps),
    RemovePodSandbox: removePodSandbox(deps),
    PodSandboxStatus: podSandboxStatus(deps),
    ListPodSandbox: listPodSandbox(deps),
    UpdateRuntimeConfig: updateRuntimeConfig(deps),
    Exec: exec(deps),
    Attach: attach(deps),
    PortForward: portForward(deps),
    CreateContainer: createContainer(deps),
    StartContainer: startContainer(deps),
    StopContainer: stopContainer(deps),
    RemoveContainer: removeContainer(deps),
    ContainerStatus: containerStatus(deps),
    ListContainers: listContainers(deps),
    UpdateContainerResources: updateContainerResources(deps),
    ReopenContainerLog: reopenContainerLog(deps),
    CheckpointContainer: checkpointContainer(deps),
    ExecSync: execSync(deps),
    ContainerStats: containerStats(deps),
    ListContainerStats: listContainerStats(deps),
    PodSandboxStats: podSandboxStats(deps),
    ListPodSandboxStats: listPodSandboxStats(deps),
    GetContainerEvents: getContainerEvents(deps),
    StreamPodSandboxes: streamPodSandboxes(deps),
    StreamContainers: streamContainers(deps),
    StreamContainerStats: streamContainerStats(deps),
    StreamPodSandboxStats: streamPodSandboxStats(deps),
    UpdatePodSandboxResources: updatePodSandboxResources(deps),
    ListMetricDescriptors: listMetricDescriptors(deps),
    ListPodSandboxMetrics: listPodSandboxMetrics(deps),
    StreamPodSandboxMetrics: streamPodSandboxMetrics(deps),
  };
}

export function imageHandlers(deps: ServerDeps): Handlers<ImageServiceHandlers> {
  return {
    ListImages: listImages(deps),
    ImageStatus: imageStatus(deps),
    RemoveImage: removeImage(deps),
    ImageFsInfo: imageFsInfo(deps),
    PullImage: pullImage(deps),
    StreamImages: streamImages(deps),
  };
}
