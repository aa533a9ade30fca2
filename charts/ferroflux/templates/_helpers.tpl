{{/* Common labels on every object of the release. */}}
{{- define "ferroflux.labels" -}}
app.kubernetes.io/part-of: ferroflux
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The image of controller `.name`. */}}
{{- define "ferroflux.image" -}}
{{- $root := .root -}}
{{- printf "%s/%s:%s" $root.Values.image.registry .name (default $root.Chart.AppVersion $root.Values.image.tag) -}}
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
