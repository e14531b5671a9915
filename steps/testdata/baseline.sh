#!/usr/bin/env bash
# The article by hand on the local control plane: what a person would type
# with openssl and curl against the same kube-apiserver and etcd binaries.
# `make bench` times it against `anonlab run anonymous-auth --backend local`.
#
# usage: baseline.sh BIN_DIR ETCD_PORT PEER_PORT APISERVER_PORT
# Prints "phase NAME" with the time (ns) each phase ends: create, requests,
# restart, requests (the bench's split of where the time goes).
set -euo pipefail
phase() { echo "phase $1 $(date +%s%N)"; }
bin=$1 etcd_port=$2 peer_port=$3 port=$4
manifests=$(cd "$(dirname "$0")/../../manifests" && pwd)
dir=$(mktemp -d)
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
cd "$dir"

# Certificates: a CA, the serving certificate, an admin client, SA keys.
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -subj /CN=baseline-ca -days 1 -out ca.crt 2>/dev/null
key apiserver.key
openssl req -new -key apiserver.key -subj /CN=kube-apiserver -out apiserver.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > san.ext
openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out apiserver.crt 2>/dev/null
key admin.key
openssl req -new -key admin.key -subj "/CN=kubernetes-admin/O=system:masters" -out admin.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile client.ext -out admin.crt 2>/dev/null
key sa.key
openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null

"$bin/etcd" --name=default --data-dir="$dir/etcd" \
  --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-cluster="default=http://127.0.0.1:$peer_port" --listen-metrics-urls= --unsafe-no-fsync >etcd.log 2>&1 &
pids+=($!)

flags=(--etcd-servers="http://127.0.0.1:$etcd_port" --bind-address=127.0.0.1 --advertise-address=127.0.0.1
  --secure-port="$port" --endpoint-reconciler-type=none
  --tls-cert-file=apiserver.crt --tls-private-key-file=apiserver.key --client-ca-file=ca.crt
  --service-account-issuer=https://kubernetes.default.svc.cluster.local
  --service-account-key-file=sa.pub --service-account-signing-key-file=sa.key
  --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC
  --allow-privileged=true --enable-admission-plugins=NodeRestriction)
url="https://127.0.0.1:$port"
admin=(curl -sS --cacert ca.crt --cert admin.crt --key admin.key)
anon=(curl -sS --cacert ca.crt)

start_apiserver() {
  "$bin/kube-apiserver" "$@" >apiserver.log 2>&1 &
  apiserver=$!
  pids+=("$apiserver")
  until [ "$("${admin[@]}" -o /dev/null -w '%{http_code}' "$url/readyz" 2>/dev/null)" = 200 ]; do sleep 0.05; done
}
expect() { # expect STATUS curl-args...
  local want=$1; shift
  local got; got=$("$@" -o response.json -w '%{http_code}')
  [ "$got" = "$want" ] || { echo "baseline: $* answered $got, want $want" >&2; cat response.json >&2; exit 1; }
}

start_apiserver "${flags[@]}"
phase create
"${admin[@]}" -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"metadata":{"name":"default"}}' "$url/api/v1/namespaces/default/serviceaccounts"
token=$("${admin[@]}" -X POST -H 'Content-Type: application/json' -d '{"spec":{}}' \
  "$url/api/v1/namespaces/default/serviceaccounts/default/token" | jq -r .status.token)
expect 200 "${anon[@]}" -H "Authorization: Bearer $token" "$url/api"
expect 403 "${anon[@]}" "$url/api"
expect 403 "${anon[@]}" "$url/api/v1/namespaces"
for m in "$manifests/my-cluster-role.yaml" "$manifests/my-cluster-role-binding.yaml"; do
  name=$(sed -n 's/^  name: //p' "$m" | head -1)
  case $m in *binding*) res=clusterrolebindings ;; *) res=clusterroles ;; esac
  expect 201 "${admin[@]}" -X PATCH -H 'Content-Type: application/apply-patch+yaml' --data-binary @"$m" \
    "$url/apis/rbac.authorization.k8s.io/v1/$res/$name?fieldManager=baseline"
done
expect 200 "${anon[@]}" "$url/api/v1/namespaces"
jq -r '[.items[].metadata.name]|join(" ")' response.json | grep -qx 'default kube-node-lease kube-public kube-system'
phase requests
kill -TERM "$apiserver"; wait "$apiserver" || true
start_apiserver "${flags[@]}" --anonymous-auth=false
phase restart
expect 401 "${anon[@]}" "$url/api"
phase requests
