{{/* Common labels on every object of the release. */}}
{{- define "ferroflux.labels" -}}
app.kubernetes.io/part-of: ferroflux
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of one controller's objects: `.root` the chart context, `.name` the controller (e.g. source-controller). */}}
{{- define "ferroflux.componentLabels" -}}
app.kubernetes.io/component: {{ .name }}
{{ include "ferroflux.labels" .root }}
{{- end -}}

{{/* The image every controller runs: by digest when one is given, else by tag. */}}
{{- define "ferroflux.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Flags shared by every controller. */}}
{{- define "ferroflux.commonArgs" -}}
- --log-level={{ .Values.logLevel }}
- --log-encoding={{ .Values.logEncoding }}
- --watch-all-namespaces={{ .Values.watchAllNamespaces }}
- --enable-leader-election={{ .Values.leaderElection }}
- --metrics-addr=:8080
- --health-addr=:9440
{{- if .Values.noCrossNamespaceRefs }}
- --no-cross-namespace-refs=true
{{- end }}
{{- end -}}

{{/* Controller key in values (source, kustomize, helm, imageAutomation, notification) to its binary/Deployment name. */}}
{{- define "ferroflux.controllerName" -}}
{{- if eq . "imageAutomation" -}}image-automation-controller{{- else -}}{{ printf "%s-controller" . }}{{- end -}}
{{- end -}}

{{/* The ServiceAccounts of the enabled controllers among `.names` (values keys), as RBAC subjects. */}}
{{- define "ferroflux.subjects" -}}
{{- range $name := .names }}
{{- if (index $.root.Values.controllers $name).enabled }}
- kind: ServiceAccount
  name: {{ include "ferroflux.controllerName" $name }}
  namespace: {{ $.root.Release.Namespace }}
{{- end }}
{{- end }}
{{- end -}}
