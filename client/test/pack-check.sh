#!/usr/bin/env bash
# The client as a storefront gets it: `npm pack` the workspace, install the tarball into an empty
# project of its own, and use it from ES modules, from CommonJS (require of an ES module, Node 22.12+)
# and from TypeScript under strict settings, as the README shows. CI runs it; so can you.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
npm pack -w client --pack-destination "$work" --silent >/dev/null
tarball="$(ls "$work"/*.tgz)"
echo "packed $(basename "$tarball"): $(tar -tzf "$tarball" | wc -l) files"
if tar -tzf "$tarball" | grep -Ev '^package/(package\.json|dist/src/[a-z]+\.(js|js\.map|d\.ts))$'; then
  echo "the tarball holds files a storefront does not need (above)"
  exit 1
fi

mkdir "$work/shop" && cd "$work/shop"
printf '{ "name": "shop", "private": true, "type": "module" }\n' >package.json
npm install --no-audit --no-fund --silent "$tarball" "typescript@$(node -p "require('$root/node_modules/typescript/package.json').version")" >/dev/null

cat >esm.mjs <<'JS'
import { ApiProblem, OrderClient } from '@order-service/client';
const shop = new OrderClient({ baseUrl: 'http://127.0.0.1:9' });
await shop.getOrder(undefined).then(
  () => { throw new Error('an undefined id was requested'); },
  (e) => { if (!(e instanceof TypeError)) throw e; },
);
if (typeof ApiProblem !== 'function') throw new Error('ApiProblem is not exported');
console.log('ESM import: ok');
JS
node esm.mjs

cat >cjs.cjs <<'JS'
const { OrderClient } = require('@order-service/client');
if (typeof OrderClient !== 'function') throw new Error('OrderClient is not exported');
console.log('CommonJS require: ok');
JS
node cjs.cjs

cat >shop.ts <<'TS'
import { ApiProblem, type Order, OrderClient } from '@order-service/client';

const shop = new OrderClient({ baseUrl: 'http://localhost:3000' });
export async function checkout(productId: string): Promise<Order> {
  await shop.login('customer@example.com', 'customer-demo-password');
  try {
    const { order, replayed } = await shop.placeOrder([{ productId, quantity: 1 }]);
    if (replayed) console.log('an earlier attempt had placed it');
    return order;
  } catch (e) {
    if (e instanceof ApiProblem && e.code === 'INSUFFICIENT_STOCK') console.log(e.body.detail);
    throw e;
  }
}
TS
cat >tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "module": "nodenext",
    "target": "es2022",
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false,
    "types": []
  },
  "files": ["shop.ts"]
}
JSON
npx tsc -p tsconfig.json
echo "TypeScript (strict, nodenext): ok"
