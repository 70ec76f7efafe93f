{{/* Names and labels. */}}
{{- define "mcp-prometheus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mcp-prometheus.fullname" -}}
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

{{- define "mcp-prometheus.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mcp-prometheus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-prometheus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mcp-prometheus.labels" -}}
helm.sh/chart: {{ include "mcp-prometheus.chart" . }}
{{ include "mcp-prometheus.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: mcp-server
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mcp-prometheus.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mcp-prometheus.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mcp-prometheus.image" -}}
{{- $img := .Values.image -}}
{{- $repo := $img.repository -}}
{{- if $img.registry }}{{ $repo = printf "%s/%s" $img.registry $img.repository }}{{ end -}}
{{- if $img.digest }}
{{- printf "%s@%s" $repo $img.digest }}
{{- else }}
{{- printf "%s:%s" $repo (toString (default .Chart.AppVersion $img.tag)) }}
{{- end }}
{{- end }}

{{/* ------------------------------------------------------------------
     Feature switches derived from values (each returns "true" or "").
     ------------------------------------------------------------------ */}}
{{- define "mcp-prometheus.tenancyMode" -}}
{{- $t := (.Values.config.layers | default dict).tenancy | default dict -}}
{{- if $t.enabled }}{{ $t.mode | default "none" }}{{ else }}none{{ end -}}
{{- end }}

{{- define "mcp-prometheus.grafanaOrganization" -}}
{{- if eq (include "mcp-prometheus.tenancyMode" .) "grafana-organization" }}true{{ end -}}
{{- end }}

{{- define "mcp-prometheus.oauthEnabled" -}}
{{- $o := .Values.config.oauth | default dict -}}
{{- if $o.enabled }}true{{ end -}}
{{- end }}

{{- define "mcp-prometheus.oauthStorageKind" -}}
{{- $o := .Values.config.oauth | default dict -}}
{{- (($o.storage | default dict).kind) | default "memory" -}}
{{- end }}

{{/* Whether the pod gets a ServiceAccount token: explicit value, else only
     for the GrafanaOrganization resolver (it talks to the API server). */}}
{{- define "mcp-prometheus.automountToken" -}}
{{- if kindIs "bool" .Values.serviceAccount.automount -}}
{{- if .Values.serviceAccount.automount }}true{{ end -}}
{{- else -}}
{{- include "mcp-prometheus.grafanaOrganization" . -}}
{{- end -}}
{{- end }}

{{/* The most replicas that can run at once. */}}
{{- define "mcp-prometheus.maxReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ int .Values.autoscaling.maxReplicas }}{{ else }}{{ int .Values.replicaCount }}{{ end -}}
{{- end }}

{{/* ------------------------------------------------------------------
     Secrets: one projected volume at secrets.mountPath with fixed file
     names, fed from the chart's Secret or secrets.existingSecret (key names
     configurable) and, for the Valkey password, optionally Valkey's own
     Secret.
     ------------------------------------------------------------------ */}}
{{- define "mcp-prometheus.secretName" -}}
{{- default (include "mcp-prometheus.fullname" .) .Values.secrets.existingSecret -}}
{{- end }}

{{/* Which secret files the pod needs: a YAML list of {name, key, path}. */}}
{{- define "mcp-prometheus.secretItems" -}}
{{- $s := .Values.secrets -}}
{{- $main := include "mcp-prometheus.secretName" . -}}
{{- $items := list -}}
{{- if include "mcp-prometheus.oauthEnabled" . -}}
{{- $o := .Values.config.oauth -}}
{{- $items = append $items (dict "name" $main "key" $s.keys.encryptionKey "path" "encryption-key") -}}
{{- $items = append $items (dict "name" $main "key" $s.keys.dexClientSecret "path" "dex-client-secret") -}}
{{- if eq ($o.registration | default "token") "token" -}}
{{- $items = append $items (dict "name" $main "key" $s.keys.registrationToken "path" "registration-token") -}}
{{- end -}}
{{- if eq (include "mcp-prometheus.oauthStorageKind" .) "valkey" -}}
{{- if $s.valkeyPasswordSecret.name -}}
{{- $items = append $items (dict "name" $s.valkeyPasswordSecret.name "key" $s.valkeyPasswordSecret.key "path" "valkey-password") -}}
{{- else if or $s.valkeyPassword (and $s.existingSecret $s.keys.valkeyPassword) -}}
{{- $items = append $items (dict "name" $main "key" $s.keys.valkeyPassword "path" "valkey-password") -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "items" $items) -}}
{{- end }}

{{- define "mcp-prometheus.secretFile" -}}
{{- printf "%s/%s" (trimSuffix "/" .root.Values.secrets.mountPath) .path -}}
{{- end }}

{{/* Whether the chart renders its own Secret. */}}
{{- define "mcp-prometheus.createSecret" -}}
{{- if not .Values.secrets.existingSecret -}}
{{- $items := (include "mcp-prometheus.secretItems" . | fromYaml).items -}}
{{- $main := include "mcp-prometheus.secretName" . -}}
{{- range $items }}{{ if eq .name $main }}true{{ end }}{{ end -}}
{{- end -}}
{{- end }}

{{/* CA bundles mounted from Secrets: dex, valkey, upstream. */}}
{{- define "mcp-prometheus.caFile" -}}
{{- printf "/etc/mcp-prometheus/ca/%s/%s" .which .key -}}
{{- end }}

{{/* ------------------------------------------------------------------
     Host names clients may use: the Service's DNS names (with and without
     port), ingress hosts, HTTPRoute hostnames, public_url's host, and
     config.server.allowed_hosts.
     ------------------------------------------------------------------ */}}
{{- define "mcp-prometheus.allowedHosts" -}}
{{- $full := include "mcp-prometheus.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $port := int .Values.service.port -}}
{{- $hosts := list -}}
{{- range (list $full (printf "%s.%s" $full $ns) (printf "%s.%s.svc" $full $ns) (printf "%s.%s.svc.%s" $full $ns .Values.clusterDomain)) -}}
{{- $hosts = append $hosts . -}}
{{- $hosts = append $hosts (printf "%s:%d" . $port) -}}
{{- end -}}
{{- if .Values.ingress.enabled -}}
{{- range .Values.ingress.hosts }}{{ $hosts = append $hosts .host }}{{ end -}}
{{- end -}}
{{- if .Values.gatewayAPI.enabled -}}
{{- range .Values.gatewayAPI.httpRoute.hostnames }}{{ $hosts = append $hosts . }}{{ end -}}
{{- end -}}
{{- $public := include "mcp-prometheus.publicUrl" . -}}
{{- if $public -}}
{{- $u := urlParse $public -}}
{{- $hosts = append $hosts $u.host -}}
{{- $hosts = append $hosts $u.hostname -}}
{{- end -}}
{{- range ((.Values.config.server | default dict).allowed_hosts | default list) }}{{ $hosts = append $hosts . }}{{ end -}}
{{- toYaml (dict "hosts" ($hosts | uniq)) -}}
{{- end }}

{{/* config.server.public_url, else https://<first ingress host> (http
     without ingress TLS), else https://<first HTTPRoute hostname>. */}}
{{- define "mcp-prometheus.publicUrl" -}}
{{- $server := .Values.config.server | default dict -}}
{{- if $server.public_url -}}
{{- $server.public_url -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- $h := (first .Values.ingress.hosts).host -}}
{{- printf "%s://%s" (ternary "https" "http" (not (empty .Values.ingress.tls))) $h -}}
{{- else if and .Values.gatewayAPI.enabled .Values.gatewayAPI.httpRoute.hostnames -}}
{{- printf "https://%s" (first .Values.gatewayAPI.httpRoute.hostnames) -}}
{{- end -}}
{{- end }}
