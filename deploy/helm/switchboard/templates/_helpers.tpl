{{/* The release's name prefix of every object. */}}
{{- define "switchboard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select one service's pods: (dict "root" $ "name" $name). */}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "switchboard.labels" -}}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/part-of: switchboard
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* One service's settings: the defaults, overridden by what its entry names: (dict "root" $ "name" $name). */}}
{{- define "switchboard.service" -}}
{{- $entry := index .root.Values.services .name -}}
{{- toYaml (mustMergeOverwrite (deepCopy .root.Values.defaults) (deepCopy $entry)) -}}
{{- end -}}

{{/* The environment variable prefix of a process's own settings. */}}
{{- define "switchboard.envPrefix" -}}
{{- printf "SWITCHBOARD_%s_" (. | upper | replace "-" "_") -}}
{{- end -}}

{{- define "switchboard.secretName" -}}
{{- required "secrets.existingSecret: name an existing Secret that holds the system's secrets (the chart renders none)" .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "switchboard.kafkaBootstrap" -}}
{{- required "kafka.bootstrap: the bootstrap servers of the external Kafka cluster (host:port,...)" .Values.kafka.bootstrap -}}
{{- end -}}

{{/* A secretKeyRef env entry: (dict "root" $ "env" NAME "key" KEY "optional" bool). */}}
{{- define "switchboard.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "switchboard.secretName" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}
