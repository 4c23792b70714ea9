{{/* Names and labels shared by every template. */}}

{{- define "spot-optimizer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name, at most 52 characters so that "<fullname>-agent-api" etc. (suffixes of at most 11) stay within 63. */}}
{{- define "spot-optimizer.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "spot-optimizer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "spot-optimizer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spot-optimizer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "spot-optimizer.labels" -}}
helm.sh/chart: {{ include "spot-optimizer.chart" . }}
{{ include "spot-optimizer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: spot-optimizer
{{- end }}

{{- define "spot-optimizer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "spot-optimizer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "spot-optimizer.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding DATABASE_URL, or "" when the operator runs without a database. */}}
{{- define "spot-optimizer.databaseSecret" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else if .Values.database.url }}
{{- printf "%s-database" (include "spot-optimizer.fullname" .) }}
{{- end }}
{{- end }}

{{/* "cluster" when the operator watches every namespace, "namespaced" when watchNamespaces lists some. */}}
{{- define "spot-optimizer.rbacMode" -}}
{{- if .Values.watchNamespaces }}namespaced{{ else }}cluster{{ end }}
{{- end }}

{{/* The grants of rbac-grants.yaml for (context, mode, scope[, in]) as RBAC PolicyRules (a YAML list);
"in" is "watched" (default: the watched namespaces, or the whole cluster) or "release" (the operator's own
namespace only). */}}
{{- define "spot-optimizer.rules" -}}
{{- $ctx := index . 0 }}
{{- $mode := index . 1 }}
{{- $scope := index . 2 }}
{{- $grants := ($ctx.Files.Get "rbac-grants.yaml" | fromYaml).grants }}
{{- $in := "watched" }}
{{- if gt (len .) 3 }}{{ $in = index . 3 }}{{ end }}
{{- range $grants }}
{{- if and (has $mode .modes) (eq .scope $scope) (eq (default "watched" .in) $in) }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: {{ toJson .resources }}
  verbs: {{ toJson .verbs }}
{{- end }}
{{- end }}
{{- end }}

{{/* Checks of combinations that the values schema cannot express. */}}
{{- define "spot-optimizer.validate" -}}
{{- if and .Values.database.existingSecret .Values.database.url }}
{{- fail "set either database.existingSecret or database.url, not both" }}
{{- end }}
{{- if and (not .Values.peering.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail "peering.enabled=false turns leader election off (the operator runs standalone): set replicaCount to 1, or keep the leader Lease on" }}
{{- end }}
{{- end }}
