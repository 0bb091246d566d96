#!/bin/sh
# One-shot, idempotent preparation of a Temporal cluster for the service; safe to run on every deploy.
#   1. waits for the frontend at TEMPORAL_ADDRESS to be SERVING;
#   2. waits for namespace TEMPORAL_NAMESPACE (created with the retention below if it never shows up);
#   3. registers the custom search attributes missing from it, then checks every one has the expected type;
#   4. sets the namespace retention from RETENTION_MAX_AGE_SEC (SPEC section 7; Temporal's floor is 1 h).
# Needs only the `temporal` CLI (image temporalio/admin-tools). Used by the compose service `temporal-setup` and
# the Kubernetes Job `temporal-setup` (deploy/k8s/temporal-setup-job.yaml).
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS must name the Temporal frontend (host:port)}"
export TEMPORAL_ADDRESS
NS="${TEMPORAL_NAMESPACE:-default}"
RETENTION_SEC="${RETENTION_MAX_AGE_SEC:-604800}"
TIMEOUT_SEC=300

# Name=Type, exactly as temporal/search-attributes.ts lists them (test/unit/deploy-files.test.ts compares the two).
SEARCH_ATTRIBUTES="
GuardStatus=Keyword
GuardAction=Keyword
GuardRequester=Keyword
GuardExpiresAt=Datetime
GuardLineageId=Keyword
GuardPersonasPending=KeywordList
"

log() { echo "[temporal-setup] $*"; }
die() {
  log "error: $*" >&2
  exit 1
}

# wait_for SECONDS CMD...: retries CMD (quietly) until it succeeds (0) or SECONDS pass (1).
wait_for() {
  until_ts=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$until_ts" ] || return 1
    sleep 2
  done
}

serving() { temporal operator cluster health 2>/dev/null | grep -q SERVING; }
namespace_exists() { temporal operator namespace describe --namespace "$NS"; }
list_attributes() { temporal operator search-attribute list --namespace "$NS"; }
# The registered type of attribute $1 in the namespace, or nothing.
type_of() { list_attributes 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }

[ "$RETENTION_SEC" -ge 3600 ] 2>/dev/null || {
  log "RETENTION_MAX_AGE_SEC=${RETENTION_SEC} is under Temporal's 1 h floor: using 3600"
  RETENTION_SEC=3600
}

log "waiting for Temporal at ${TEMPORAL_ADDRESS}"
wait_for "$TIMEOUT_SEC" serving || die "Temporal at ${TEMPORAL_ADDRESS} not SERVING after ${TIMEOUT_SEC}s"

# Nothing else creates the namespace (the plain server image does not). A concurrent run may win the race: then it
# exists, which is all that matters.
if ! namespace_exists >/dev/null 2>&1; then
  log "creating namespace ${NS}"
  temporal operator namespace create --namespace "$NS" --retention "${RETENTION_SEC}s" ||
    wait_for 30 namespace_exists || die "could not create namespace ${NS}"
fi
# A new namespace is usable once the frontend's namespace cache has it.
wait_for "$TIMEOUT_SEC" list_attributes || die "namespace ${NS} not usable after ${TIMEOUT_SEC}s"

for entry in $SEARCH_ATTRIBUTES; do
  name=${entry%%=*}
  type=${entry#*=}
  if [ -z "$(type_of "$name")" ]; then
    log "registering search attribute ${name} (${type})"
    # A concurrent run may win the race: the check below is what decides.
    temporal operator search-attribute create --namespace "$NS" --name "$name" --type "$type" ||
      log "create ${name} failed; checking whether it exists now"
  fi
done

failed=0
for entry in $SEARCH_ATTRIBUTES; do
  name=${entry%%=*}
  type=${entry#*=}
  have=$(type_of "$name")
  if [ "$have" != "$type" ]; then
    log "search attribute ${name}: expected ${type}, found '${have:-missing}'" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || die "search attributes are not as the service needs them"
log "search attributes present in ${NS}"

temporal operator namespace update --namespace "$NS" --retention "${RETENTION_SEC}s" >/dev/null ||
  die "could not set the retention of ${NS}"
log "namespace ${NS} retention set to ${RETENTION_SEC}s; done"
