{{/*
Naming. Objects are "<fullname>-<component>[-canary]"; fullname is the release name (or
fullnameOverride), capped at 40 characters so every derived name stays a valid DNS label.
*/}}
{{- define "modgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modgate.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* (dict "root" $ "component" "speech" "variant" "stable") -> object name */}}
{{- define "modgate.componentName" -}}
{{- $base := printf "%s-%s" (include "modgate.fullname" .root) .component -}}
{{- if eq (.variant | default "stable") "canary" -}}{{ printf "%s-canary" $base }}{{- else -}}{{ $base }}{{- end -}}
{{- end -}}

{{- define "modgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object (never used in selectors). */}}
{{- define "modgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "modgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component, all tracks: (dict "root" $ "component" "gateway") */}}
{{- define "modgate.componentSelector" -}}
app.kubernetes.io/name: {{ include "modgate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector labels of one Deployment: (dict "root" $ "component" "speech" "variant" "stable") */}}
{{- define "modgate.selectorLabels" -}}
{{ include "modgate.componentSelector" . }}
modgate.io/variant: {{ .variant }}
{{- end -}}

{{/* Full object labels of one component/variant. */}}
{{- define "modgate.componentLabels" -}}
{{ include "modgate.labels" .root }}
app.kubernetes.io/component: {{ .component }}
modgate.io/variant: {{ .variant }}
{{- end -}}

{{/* (dict "root" $ "image" .image "fallback" .stableImage) -> "registry/repo:tag" */}}
{{- define "modgate.image" -}}
{{- $fallback := .fallback | default dict -}}
{{- $repo := .image.repository | default $fallback.repository -}}
{{- $tag := .image.tag | default $fallback.tag | default .root.Chart.AppVersion -}}
{{- if .root.Values.imageRegistry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.imageRegistry) $repo $tag -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{/* The image tag a workload runs (service.version in traces). */}}
{{- define "modgate.imageTag" -}}
{{- $fallback := .fallback | default dict -}}
{{- .image.tag | default $fallback.tag | default .root.Chart.AppVersion -}}
{{- end -}}

{{/*
Env shared by every modgate pod: variant, policy dir, pod identity, writable HOME/caches and
tracing. (dict "root" $ "component" "speech" "variant" "stable" "version" "0.1.0")
*/}}
{{- define "modgate.commonEnv" -}}
{{- $t := .root.Values.tracing -}}
- name: MODGATE_VARIANT
  value: {{ .variant | quote }}
- name: MODGATE_POLICY_DIR
  value: {{ .root.Values.policy.mountPath | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: HOME
  value: /var/cache/modgate/home
- name: XDG_CACHE_HOME
  value: /var/cache/modgate/xdg
- name: MODGATE_TRACING_ENABLED
  value: {{ $t.enabled | toString | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "modgate-%s" .component | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ include "modgate.resourceAttributes" . | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $t.samplingRatio | toString | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $t.protocol | quote }}
{{- with $t.environment }}
- name: MODGATE_ENVIRONMENT
  value: {{ . | quote }}
{{- end }}
{{- if $t.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $t.endpoint | quote }}
{{- end }}
{{- end -}}

{{- define "modgate.resourceAttributes" -}}
{{- $attrs := list (printf "service.version=%s" .version) (printf "modgate.variant=%s" .variant) "service.namespace=modgate" "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" -}}
{{- range $k, $v := .root.Values.tracing.resourceAttributes -}}
{{- $attrs = append $attrs (printf "%s=%v" $k $v) -}}
{{- end -}}
{{- join "," $attrs -}}
{{- end -}}

{{/* Scratch volumes every pod mounts (read-only root filesystem). */}}
{{- define "modgate.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratch.tmpSizeLimit }}
- name: cache
  emptyDir:
    sizeLimit: {{ .Values.scratch.cacheSizeLimit }}
- name: policies
  configMap:
    name: {{ include "modgate.fullname" . }}-policies
{{- end -}}

{{- define "modgate.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: cache
  mountPath: /var/cache/modgate
- name: policies
  mountPath: {{ .Values.policy.mountPath }}
  readOnly: true
{{- end -}}

{{/*
Topology spread constraints; an entry without labelSelector gets the Deployment's selector.
(dict "root" $ "component" .. "variant" .. "constraints" list)
*/}}
{{- define "modgate.topologySpread" -}}
{{- $selector := include "modgate.selectorLabels" . | fromYaml -}}
{{- $out := list -}}
{{- range .constraints -}}
{{- $c := deepCopy . -}}
{{- if not (hasKey $c "labelSelector") -}}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Pod-level scheduling and identity shared by every Deployment. (dict "root" $ "c" componentValues) */}}
{{- define "modgate.podCommon" -}}
serviceAccountName: {{ include "modgate.serviceAccountName" .root }}
automountServiceAccountToken: {{ .root.Values.serviceAccount.automountToken }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .c.terminationGracePeriodSeconds }}
{{- with .c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* Checksum of the ConfigMaps pods read, so a policy change rolls them. */}}
{{- define "modgate.policyChecksum" -}}
{{- include (print .Template.BasePath "/configmap-policies.yaml") . | sha256sum -}}
{{- end -}}

{{/* An env var value: lists/maps as JSON, whole numbers without an exponent, the rest as text. */}}
{{- define "modgate.envValue" -}}
{{- if or (kindIs "slice" .) (kindIs "map" .) -}}
{{- toJson . | quote -}}
{{- else if kindIs "float64" . -}}
{{- if eq (. | int64 | float64) . -}}{{- . | int64 | toString | quote -}}{{- else -}}{{- . | toString | quote -}}{{- end -}}
{{- else -}}
{{- . | toString | quote -}}
{{- end -}}
{{- end -}}

{{/* Settings map -> env list: (dict "prefix" "MODGATE_SPEECH_" "values" map); null values are skipped. */}}
{{- define "modgate.settingsEnv" -}}
{{- $prefix := .prefix -}}
{{- range $key, $value := .values }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ printf "%s%s" $prefix ($key | snakecase | upper) }}
  value: {{ include "modgate.envValue" $value }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The bank directory (hash banks), for the pods that match against it: the gateway (exact
MD5/SHA-256 before splitting) and vision (PDQ of frames). Nothing when banks.enabled is off.
*/}}
{{- define "modgate.bankEnv" -}}
{{- $b := .Values.banks -}}
{{- if $b.enabled -}}
- name: MODGATE_BANK_DIR
  value: {{ $b.mountPath | quote }}
- name: MODGATE_BANK_RELOAD_INTERVAL_S
  value: {{ $b.reloadIntervalS | toString | quote }}
{{- end }}
{{- end -}}

{{- define "modgate.bankMounts" -}}
{{- $b := .Values.banks -}}
{{- if $b.enabled -}}
- name: banks
  mountPath: {{ $b.mountPath }}
  readOnly: true
  {{- with $b.subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "modgate.bankVolumes" -}}
{{- $b := .Values.banks -}}
{{- if $b.enabled -}}
{{- if $b.existingClaim -}}
- name: banks
  persistentVolumeClaim:
    claimName: {{ $b.existingClaim }}
    readOnly: true
{{- else if $b.volume -}}
- name: banks
  {{- toYaml $b.volume | nindent 2 }}
{{- else }}
{{- fail "banks.enabled needs banks.existingClaim (a PersistentVolumeClaim holding the bank directory) or banks.volume (any volume source)" }}
{{- end }}
{{- end }}
{{- end -}}
