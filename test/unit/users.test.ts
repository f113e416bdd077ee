import { describe, expect, it } from 'vitest';
import { parseGroup, parsePasswd, resolveUser } from '../../src/container/users';
import { GROUP, PASSWD } from '../../hack/images/busybox';

const passwd = parsePasswd(PASSWD);
const groups = parseGroup(GROUP);
const resolve = (req: Partial<Parameters<typeof resolveUser>[0]>) => resolveUser({ imageUser: '', supplementalGroups: [], ...req }, passwd, groups);

describe('container users', () => {
  it('defaults to root, and resolves names and uids from /etc/passwd with their groups', () => {
    expect(resolve({})).toEqual({ uid: 0, gid: 0, additionalGids: [0], home: '/root' });
    expect(resolve({ imageUser: 'berth' })).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 50000], home: '/home/berth' });
    expect(resolve({ imageUser: '1000' })).toMatchObject({ uid: 1000, gid: 1000, additionalGids: [1000, 50000] });
    expect(resolve({ imageUser: '4242' })).toEqual({ uid: 4242, gid: 0, additionalGids: [0], home: '/' });
  });

  it('takes the group after the colon, by name or number', () => {
    expect(resolve({ imageUser: 'berth:extra' })).toMatchObject({ uid: 1000, gid: 50000, additionalGids: [50000] });
    expect(resolve({ imageUser: '1000:7' })).toMatchObject({ gid: 7 });
  });

  it('lets the CRI config override the image, and adds supplemental groups', () => {
    expect(resolve({ imageUser: 'berth', runAsUser: 0 })).toMatchObject({ uid: 0, gid: 0 });
    expect(resolve({ runAsUsername: 'berth', runAsGroup: 3, supplementalGroups: [4, 5] })).toMatchObject({ uid: 1000, gid: 3, additionalGids: [3, 50000, 4, 5] });
  });

  it('with SupplementalGroupsPolicy Strict, leaves out the groups the image gives the user', () => {
    expect(resolve({ runAsUser: 1000, supplementalGroups: [1234], supplementalGroupsPolicy: 'merge' })).toMatchObject({ gid: 1000, additionalGids: [1000, 50000, 1234] });
    expect(resolve({ runAsUser: 1000, supplementalGroups: [1234], supplementalGroupsPolicy: 'strict' })).toMatchObject({ gid: 1000, additionalGids: [1000, 1234] });
  });

  it('refuses unknown names and a group without a user', () => {
    expect(() => resolve({ imageUser: 'nosuch' })).toThrow(/not in the container's \/etc\/passwd/);
    expect(() => resolve({ imageUser: 'berth:nosuch' })).toThrow(/not in the container's \/etc\/group/);
    expect(() => resolve({ runAsGroup: 5 })).toThrow(/run_as_group is set but no user/);
    expect(() => resolve({ imageUser: 'berth', runAsGroup: 5 })).toThrow(/run_as_group is set but no user/);
  });
});
