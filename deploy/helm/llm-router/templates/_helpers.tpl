{{/* Name of every object of a release: the release name, at most 63 characters. */}}
{{- define "llm-router.fullname" -}}
{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "llm-router.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "llm-router.labels" -}}
{{ include "llm-router.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* The Redis host the router uses: the bundled one, else redis.host (may be empty). */}}
{{- define "llm-router.redisHost" -}}
{{- if .Values.redis.enabled -}}
{{ include "llm-router.fullname" . }}-redis
{{- else -}}
{{ .Values.redis.host }}
{{- end -}}
{{- end }}
