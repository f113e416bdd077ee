// Test images from scratch: tar layers written exactly as given, OCI/Docker documents, a registry
// pusher, OCI layouts and `docker save` archives. One concern per module; this re-exports them all.
export * from './tar';
export * from './tar-read';
export * from './host';
export * from './compress';
export * from './image';
export * from './push';
export * from './layout';
export * from './archive';
