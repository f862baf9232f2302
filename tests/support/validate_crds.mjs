// Validate Argo CD and Prometheus-operator objects with the typed models of the npm
// packages kubernetes-models, @kubernetes-models/argo-cd and
// @kubernetes-models/prometheus-operator (installed by scripts/bootstrap.sh).
// Input: a JSON array of objects on stdin.  Output: one line per object; exit 1 when any
// object fails or has a kind this script does not know.
import { readFileSync } from "node:fs";
import * as argo from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1";
import * as monitoring from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const MODELS = {
  "argoproj.io/v1alpha1": argo,
  "monitoring.coreos.com/v1": monitoring,
};

const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const obj of objects) {
  const id = `${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`;
  const Model = MODELS[obj.apiVersion]?.[obj.kind];
  if (!Model) {
    console.log(`UNKNOWN ${id}`);
    failed += 1;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`OK ${id}`);
  } catch (error) {
    console.log(`FAIL ${id}: ${error.message}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
