// registry.k8s.io/e2e-test-images/nonewprivs:1.3: upstream's `nnp` (kubernetes test/images/nonewprivs),
// compiled here with gcc (static), set-uid root in the layer, as the image's entrypoint. It prints
// "Effective uid: N": 0 when it may gain privileges, the caller's uid under no_new_privs.
import { buildImage, layer, type BuiltImage } from '../../../test/support/oci/image';
import { BUSYBOX_CONFIG, busyboxLayer } from './busybox';
import { compileStatic } from './rootfs';

export const NNP_SOURCE = `#include <stdio.h>
#include <unistd.h>
#include <sys/types.h>

int main(int argc, char *argv[])
{
	printf("Effective uid: %d\\n", geteuid());
	return 0;
}
`;

export function nonewprivsImage(): BuiltImage {
  const nnp = compileStatic('nnp', NNP_SOURCE);
  return buildImage(
    [
      busyboxLayer(),
      layer([
        { type: 'dir', path: 'usr/' },
        { type: 'dir', path: 'usr/local/' },
        { type: 'dir', path: 'usr/local/bin/' },
        { type: 'file', path: 'usr/local/bin/nnp', content: nnp, mode: 0o4755, uid: 0, gid: 0 },
      ]),
    ],
    { Env: BUSYBOX_CONFIG.Env, Entrypoint: ['/usr/local/bin/nnp'] },
  );
}
