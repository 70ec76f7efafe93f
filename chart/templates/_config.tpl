{{/* ====================================================================
     The server's TOML config, built from .Values.config plus what the
     chart owns (listen addresses, allowed hosts, secret file paths).
     Helm's toToml turns every number into a float (50000 -> 50000.0) and
     the server's integer keys refuse floats, so the TOML is written here.
     null values are left out (so a key can be unset from values).
     ==================================================================== */}}

{{- define "mcp-prometheus.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end -}}
{{- end }}

{{- define "mcp-prometheus.toml.value" -}}
{{- $v := . -}}
{{- $k := kindOf $v -}}
{{- if eq $k "string" }}{{ toJson $v }}
{{- else if eq $k "bool" }}{{ ternary "true" "false" $v }}
{{- else if or (eq $k "float64") (eq $k "float32") }}{{ if eq (float64 (int64 $v)) (float64 $v) }}{{ int64 $v }}{{ else }}{{ $v }}{{ end }}
{{- else if or (hasPrefix "int" $k) (hasPrefix "uint" $k) }}{{ $v }}
{{- else if eq $k "slice" }}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "mcp-prometheus.toml.value" $e }}{{ end }}]
{{- else if eq $k "map" }}{{ $parts := list }}{{ range $kk, $vv := $v }}{{ if not (kindIs "invalid" $vv) }}{{ $parts = append $parts (printf "%s = %s" (include "mcp-prometheus.toml.key" $kk) (include "mcp-prometheus.toml.value" $vv)) }}{{ end }}{{ end }}{{ if $parts }}{ {{ join ", " $parts }} }{{ else }}{}{{ end }}
{{- else }}{{ fail (printf "config: cannot write %v (%s) as TOML" $v $k) }}
{{- end }}
{{- end }}

{{/* "true" when v is a non-empty list of maps (an array of tables). */}}
{{- define "mcp-prometheus.toml.isTableArray" -}}
{{- if and (kindIs "slice" .) (not (empty .)) }}{{ if kindIs "map" (first .) }}true{{ end }}{{ end -}}
{{- end }}

{{/* A table's body: plain keys first, then sub-tables and arrays of tables.
     Arguments: dict "path" (list of quoted keys) "table" (map). */}}
{{- define "mcp-prometheus.toml.table" -}}
{{- $path := .path -}}
{{- $t := .table -}}
{{- range $k, $v := $t }}
{{- if and (not (kindIs "invalid" $v)) (not (kindIs "map" $v)) (not (include "mcp-prometheus.toml.isTableArray" $v)) }}
{{ include "mcp-prometheus.toml.key" $k }} = {{ include "mcp-prometheus.toml.value" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $t }}
{{- $p := append $path (include "mcp-prometheus.toml.key" $k) }}
{{- if kindIs "map" $v }}
{{- $plain := false }}
{{- range $kk, $vv := $v }}{{ if and (not (kindIs "invalid" $vv)) (not (kindIs "map" $vv)) (not (include "mcp-prometheus.toml.isTableArray" $vv)) }}{{ $plain = true }}{{ end }}{{ end }}
{{- if or $plain (empty $v) }}

[{{ join "." $p }}]
{{- end }}
{{- include "mcp-prometheus.toml.table" (dict "path" $p "table" $v) }}
{{- else if include "mcp-prometheus.toml.isTableArray" $v }}
{{- range $e := $v }}

[[{{ join "." $p }}]]
{{- include "mcp-prometheus.toml.table" (dict "path" $p "table" $e) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The effective config as YAML (a dict); rendered to TOML below. */}}
{{- define "mcp-prometheus.config" -}}
{{- $c := deepCopy (.Values.config | default dict) -}}
{{- $ports := .Values.containerPorts -}}
{{- $server := $c.server | default dict -}}
{{- $_ := set $server "transport" "streamable-http" -}}
{{- $_ := set $server "listen" (printf "%s:%d" .Values.listenAddress (int $ports.mcp)) -}}
{{- $_ := set $server "allowed_hosts" (include "mcp-prometheus.allowedHosts" . | fromYaml).hosts -}}
{{- $public := include "mcp-prometheus.publicUrl" . -}}
{{- if $public }}{{ $_ := set $server "public_url" $public }}{{ end -}}
{{- if not (kindIs "bool" $server.stateful_sessions) -}}
{{- /* sessions live in one replica's memory: stateless when several run */ -}}
{{- $_ := set $server "stateful_sessions" (le (int (include "mcp-prometheus.maxReplicas" .)) 1) -}}
{{- end -}}
{{- $_ := set $c "server" $server -}}
{{- $obs := $c.observability | default dict -}}
{{- $_ := set $obs "listen" (printf "%s:%d" .Values.listenAddress (int $ports.observability)) -}}
{{- $_ := set $c "observability" $obs -}}
{{- if not $c.upstreams -}}
{{- fail "config.upstreams: configure at least one upstream, e.g. [{name: mimir, url: \"http://mimir-gateway.mimir.svc:8080/prometheus\"}]" -}}
{{- end -}}
{{- if .Values.caSecrets.upstream.name -}}
{{- $up := first $c.upstreams -}}
{{- $tls := $up.tls | default dict -}}
{{- $_ := set $tls "ca_file" (include "mcp-prometheus.caFile" (dict "which" "upstream" "key" .Values.caSecrets.upstream.key)) -}}
{{- $_ := set $up "tls" $tls -}}
{{- end -}}
{{- if include "mcp-prometheus.oauthEnabled" . -}}
{{- $o := $c.oauth -}}
{{- $files := dict -}}
{{- range (include "mcp-prometheus.secretItems" . | fromYaml).items }}{{ $_ := set $files .path (include "mcp-prometheus.secretFile" (dict "root" $ "path" .path)) }}{{ end -}}
{{- $_ := set $o "encryption_key_file" (get $files "encryption-key") -}}
{{- if hasKey $files "registration-token" }}{{ $_ := set $o "registration_token_file" (get $files "registration-token") }}{{ end -}}
{{- $storage := $o.storage | default dict -}}
{{- if eq ($storage.kind | default "memory") "valkey" -}}
{{- if not $storage.url }}{{ fail "config.oauth.storage.url: set the Valkey URL (redis://host:6379 or rediss://host:6379) when storage kind is valkey" }}{{ end -}}
{{- if hasKey $files "valkey-password" }}{{ $_ := set $storage "password_file" (get $files "valkey-password") }}{{ end -}}
{{- if .Values.caSecrets.valkey.name -}}
{{- $tls := $storage.tls | default dict -}}
{{- $_ := set $tls "ca_file" (include "mcp-prometheus.caFile" (dict "which" "valkey" "key" .Values.caSecrets.valkey.key)) -}}
{{- $_ := set $storage "tls" $tls -}}
{{- end -}}
{{- end -}}
{{- $_ := set $o "storage" $storage -}}
{{- $provider := $o.provider | default dict -}}
{{- if not $provider.issuer_url }}{{ fail "config.oauth.provider.issuer_url: set the OIDC provider (Dex) issuer URL when config.oauth.enabled" }}{{ end -}}
{{- if not $provider.client_id }}{{ fail "config.oauth.provider.client_id: set the OAuth client ID registered at the provider" }}{{ end -}}
{{- $_ := set $provider "client_secret_file" (get $files "dex-client-secret") -}}
{{- if not $provider.redirect_url -}}
{{- if not $public }}{{ fail "config.server.public_url: the OAuth server needs the URL clients reach it at (or enable ingress / gatewayAPI with a host)" }}{{ end -}}
{{- $_ := set $provider "redirect_url" (printf "%s/oauth/callback" (trimSuffix "/" $public)) -}}
{{- end -}}
{{- if .Values.caSecrets.dex.name -}}
{{- $_ := set $provider "ca_file" (include "mcp-prometheus.caFile" (dict "which" "dex" "key" .Values.caSecrets.dex.key)) -}}
{{- end -}}
{{- $_ := set $o "provider" $provider -}}
{{- else -}}
{{- /* no [oauth] table at all while it is off */ -}}
{{- $_ := unset $c "oauth" -}}
{{- end -}}
{{- toYaml $c -}}
{{- end }}

{{- define "mcp-prometheus.configToml" -}}
# mcp-prometheus config, rendered by the Helm chart {{ include "mcp-prometheus.chart" . }}
# from .Values.config; check it with: mcp-prometheus check-config --config <file>
{{- include "mcp-prometheus.toml.table" (dict "path" (list) "table" (include "mcp-prometheus.config" . | fromYaml)) }}
{{ end }}
