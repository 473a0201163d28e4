{{/*
The verdict store (values `store`, modgate/store/config.py StoreSettings), for the gateway pods:
guards, env, mounts and volumes. The URL of an external PostgreSQL comes from a Secret the chart
does not create; SQLite lives in one pod's volume, so it is refused when more than one gateway
pod can run.
*/}}
{{- define "modgate.storeGuards" -}}
{{- $s := .Values.store -}}
{{- $g := .Values.gateway -}}
{{- if $s.enabled -}}
{{- if eq $s.backend "sqlite" -}}
{{- $why := "store.backend=sqlite keeps verdicts in one gateway pod's file, so only one gateway pod may run" -}}
{{- $fix := "or use store.backend=postgresql with store.postgresql.urlSecret (a Secret holding the database URL)" -}}
{{- if $g.canary.enabled -}}
{{- fail (printf "%s, but gateway.canary.enabled runs a second gateway Deployment: set gateway.canary.enabled=false, %s" $why $fix) -}}
{{- else if and $g.autoscaling.enabled (gt (int $g.autoscaling.maxReplicas) 1) -}}
{{- fail (printf "%s, but gateway.autoscaling lets the HPA run up to %d: set gateway.autoscaling.maxReplicas=1 (or gateway.autoscaling.enabled=false with gateway.replicaCount=1), %s" $why (int $g.autoscaling.maxReplicas) $fix) -}}
{{- else if and (not $g.autoscaling.enabled) (gt (int $g.replicaCount) 1) -}}
{{- fail (printf "%s, but gateway.replicaCount is %d: set gateway.replicaCount=1, %s" $why (int $g.replicaCount) $fix) -}}
{{- end -}}
{{- else if not $s.postgresql.urlSecret.name -}}
{{- fail "store.backend=postgresql reads the database URL from a Secret the chart does not create: set store.postgresql.urlSecret.name (and .key) to a Secret holding postgresql://user:password@host:5432/db, or store.backend=sqlite with one gateway replica, or store.enabled=false" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "modgate.storeIsSqlite" -}}
{{- if and .Values.store.enabled (eq .Values.store.backend "sqlite") -}}true{{- end -}}
{{- end -}}

{{- define "modgate.storeEnv" -}}
{{- $s := .Values.store -}}
- name: MODGATE_STORE_ENABLED
  value: {{ $s.enabled | toString | quote }}
{{- if $s.enabled }}
{{- if eq $s.backend "postgresql" }}
- name: MODGATE_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $s.postgresql.urlSecret.name }}
      key: {{ $s.postgresql.urlSecret.key }}
{{- else }}
{{- /* No URL: the store's default, SQLite at $MODGATE_HOME/verdicts.db, on the volume. */}}
- name: MODGATE_HOME
  value: {{ $s.sqlite.mountPath | quote }}
{{- end }}
- name: MODGATE_STORE_RETENTION_DAYS
  value: {{ include "modgate.envValue" $s.retentionDays }}
- name: MODGATE_STORE_SPOOL_DIR
  value: {{ $s.spool.mountPath | quote }}
{{- include "modgate.settingsEnv" (dict "prefix" "MODGATE_STORE_" "values" ($s.config | default dict)) }}
{{- end }}
{{- end -}}

{{- define "modgate.storeMounts" -}}
{{- $s := .Values.store -}}
{{- if $s.enabled -}}
{{- if include "modgate.storeIsSqlite" . }}
- name: verdicts
  mountPath: {{ $s.sqlite.mountPath }}
{{- end }}
- name: verdict-spool
  mountPath: {{ $s.spool.mountPath }}
{{- end }}
{{- end -}}

{{- define "modgate.storeVolumes" -}}
{{- $s := .Values.store -}}
{{- if $s.enabled -}}
{{- if include "modgate.storeIsSqlite" . }}
- name: verdicts
  {{- include "modgate.claimOrEmptyDir" $s.sqlite | nindent 2 }}
{{- end }}
- name: verdict-spool
  {{- include "modgate.claimOrEmptyDir" $s.spool | nindent 2 }}
{{- end }}
{{- end -}}

{{/* (dict with existingClaim and sizeLimit) -> a writable volume source */}}
{{- define "modgate.claimOrEmptyDir" -}}
{{- if .existingClaim -}}
persistentVolumeClaim:
  claimName: {{ .existingClaim }}
{{- else -}}
emptyDir:
  sizeLimit: {{ .sizeLimit }}
{{- end -}}
{{- end -}}
