{{/*
Helpers shared by the three components. A component template calls them with
a dict: (dict "root" $ "component" "ingest").
*/}}

{{- define "inlet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "inlet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* <fullname>-<component>, e.g. inlet-ingest. */}}
{{- define "inlet.componentName" -}}
{{- printf "%s-%s" (include "inlet.fullname" .root | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{- define "inlet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; pass the root context. */}}
{{- define "inlet.labels" -}}
helm.sh/chart: {{ include "inlet.chart" . }}
app.kubernetes.io/name: {{ include "inlet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: inlet
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of a component's objects. */}}
{{- define "inlet.componentLabels" -}}
{{ include "inlet.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selector labels of a component: stable across upgrades. */}}
{{- define "inlet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inlet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "inlet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "inlet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "inlet.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Whether the chart creates the database Secret. */}}
{{- define "inlet.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "inlet.fullname" .) }}
{{- end }}
{{- end }}

{{- define "inlet.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- end }}

{{- define "inlet.sqlite" -}}
{{- if and (not .Values.database.existingSecret) (hasPrefix "sqlite:" .Values.database.url) }}true{{ end }}
{{- end }}

{{/* Whether a component gets the catalog section and INLET_DATABASE_URL. */}}
{{- define "inlet.usesCatalog" -}}
{{- if or (eq .component "metastore") .root.Values.database.sharedWithIngestAndCompactor }}true{{ end }}
{{- end }}

{{- define "inlet.s3Enabled" -}}
{{- if or .Values.s3Credentials.existingSecret .Values.s3Credentials.accessKeyId }}true{{ end }}
{{- end }}

{{- define "inlet.s3SecretName" -}}
{{- if .Values.s3Credentials.existingSecret }}
{{- .Values.s3Credentials.existingSecret }}
{{- else }}
{{- printf "%s-s3" (include "inlet.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The component's inlet YAML: `config`, the component's `config` merged over
it, then the keys the chart owns. Keys of services still being written
(metastore.*_listen, compaction.metrics_listen) follow the naming of
ingest.metrics_listen; docs/deployment.md lists them.
*/}}
{{- define "inlet.config" -}}
{{- $v := .root.Values }}
{{- $cfg := mustMergeOverwrite (deepCopy $v.config) (deepCopy (index $v .component "config" | default dict)) }}
{{- if include "inlet.s3Enabled" .root }}
{{- $storage := get $cfg "storage" | default dict }}
{{- $s3 := get $storage "s3" | default dict }}
{{- $_ := set $s3 "access_key_id" "${AWS_ACCESS_KEY_ID}" }}
{{- $_ := set $s3 "secret_access_key" "${AWS_SECRET_ACCESS_KEY}" }}
{{- if and $v.s3Credentials.existingSecret $v.s3Credentials.sessionTokenKey }}
{{- $_ := set $s3 "session_token" "${AWS_SESSION_TOKEN}" }}
{{- end }}
{{- $_ := set $storage "s3" $s3 }}
{{- $_ := set $cfg "storage" $storage }}
{{- end }}
{{- if include "inlet.usesCatalog" . }}
{{- $migrateOnStart := and (eq .component "metastore") (eq $v.metastore.migrations.mode "onStart") }}
{{- $_ := set $cfg "catalog" (dict "database_url" "${INLET_DATABASE_URL}" "migrate_on_start" $migrateOnStart) }}
{{- else }}
{{- $_ := unset $cfg "catalog" }}
{{- end }}
{{- if eq .component "ingest" }}
{{- $section := get $cfg "ingest" | default dict }}
{{- $_ := set $section "metrics_listen" (printf "0.0.0.0:%d" (int $v.ingest.metricsPort)) }}
{{- $_ := set $cfg "ingest" $section }}
{{- if $v.ingest.staticMembership }}
{{- $kafka := get $cfg "kafka" | default dict }}
{{- $props := get $kafka "properties" | default dict }}
{{- $_ := set $props "group.instance.id" "${POD_NAME}" }}
{{- $_ := set $kafka "properties" $props }}
{{- $_ := set $cfg "kafka" $kafka }}
{{- end }}
{{- else if eq .component "metastore" }}
{{- $section := get $cfg "metastore" | default dict }}
{{- $_ := set $section "thrift_listen" (printf "0.0.0.0:%d" (int $v.metastore.thriftPort)) }}
{{- $_ := set $section "http_listen" (printf "0.0.0.0:%d" (int $v.metastore.httpPort)) }}
{{- $_ := set $cfg "metastore" $section }}
{{- else if eq .component "compactor" }}
{{- $section := get $cfg "compaction" | default dict }}
{{- $_ := set $section "metrics_listen" (printf "0.0.0.0:%d" (int $v.compactor.metricsPort)) }}
{{- $_ := set $cfg "compaction" $section }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Environment of a component's containers. */}}
{{- define "inlet.env" -}}
{{- $v := .root.Values -}}
- name: INLET_LOG
  value: {{ $v.logLevel | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
# The instance name of this process in `inlet jobs`: a restarted pod finds
# its predecessor's state and records a crash as such.
- name: INLET_INSTANCE
  value: "$(POD_NAME)"
{{- if include "inlet.usesCatalog" . }}
- name: INLET_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "inlet.databaseSecretName" .root }}
      key: {{ include "inlet.databaseSecretKey" .root }}
{{- end }}
{{- if include "inlet.s3Enabled" .root }}
{{- $secret := include "inlet.s3SecretName" .root }}
{{- $ex := $v.s3Credentials.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ ternary $v.s3Credentials.accessKeyIdKey "AWS_ACCESS_KEY_ID" (not (empty $ex)) }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ ternary $v.s3Credentials.secretAccessKeyKey "AWS_SECRET_ACCESS_KEY" (not (empty $ex)) }}
{{- if and $ex $v.s3Credentials.sessionTokenKey }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.s3Credentials.sessionTokenKey }}
{{- end }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes every pod has: its config, a writable /tmp, extraVolumes. */}}
{{- define "inlet.volumes" -}}
- name: config
  configMap:
    name: {{ include "inlet.componentName" . }}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- with .root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "inlet.volumeMounts" -}}
- name: config
  mountPath: /etc/inlet
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- with .root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod annotations: config checksum (restart on change) and scrape hints. */}}
{{- define "inlet.podAnnotations" -}}
checksum/config: {{ include "inlet.config" . | sha256sum }}
{{- if .root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with (index .root.Values .component "podAnnotations") }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Scheduling fields shared by the pod specs. */}}
{{- define "inlet.scheduling" -}}
{{- $c := index .root.Values .component }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
