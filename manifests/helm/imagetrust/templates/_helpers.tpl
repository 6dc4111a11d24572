{{/* Name of the provider's namespaced objects. */}}
{{- define "imagetrust.fullname" -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. The selector uses app.kubernetes.io/name only, as the kustomize
base does, so a Deployment installed from manifests/ can be taken over by the chart. */}}
{{- define "imagetrust.labels" -}}
app.kubernetes.io/name: {{ include "imagetrust.fullname" . }}
{{ include "imagetrust.commonLabels" . }}
{{- end -}}

{{/* Labels of the objects that are not the provider's (the seed constraints). */}}
{{- define "imagetrust.commonLabels" -}}
app.kubernetes.io/part-of: imagetrust
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "imagetrust.selectorLabels" -}}
app.kubernetes.io/name: {{ include "imagetrust.fullname" . }}
{{- end -}}

{{- define "imagetrust.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- if .Values.image.digest -}}{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* Secret holding the serving certificate (tls.crt, tls.key). */}}
{{- define "imagetrust.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.existingSecret is required with tls.mode=secret: the name of a kubernetes.io/tls Secret for the provider's serving certificate" .Values.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "imagetrust.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Whether the chart generates the CA that cert-manager issues the serving certificate from. */}}
{{- define "imagetrust.ownCA" -}}
{{- if and (eq .Values.tls.mode "certManager") (empty .Values.tls.certManager.issuerRef) -}}true{{- end -}}
{{- end -}}

{{/* The chart's CA as a dict {crt, key} (base64 PEM): the one stored in Secret imagetrust-ca when
it exists (upgrades keep it; the kustomize cert-manager component names its CA the same), else a
new one (10 years). Generated once per rendering and shared
by the Secret and the Providers' caBundle. */}}
{{- define "imagetrust.caPair" -}}
{{- $cache := .Values.__imagetrustCA | default dict -}}
{{- if not $cache.crt -}}
{{- $s := lookup "v1" "Secret" .Release.Namespace "imagetrust-ca" -}}
{{- if and $s $s.data (index $s.data "tls.crt") (index $s.data "tls.key") -}}
{{- $_ := set $cache "crt" (index $s.data "tls.crt") -}}
{{- $_ := set $cache "key" (index $s.data "tls.key") -}}
{{- else -}}
{{- $ca := genCA "imagetrust-ca" 3650 -}}
{{- $_ := set $cache "crt" ($ca.Cert | b64enc) -}}
{{- $_ := set $cache "key" ($ca.Key | b64enc) -}}
{{- end -}}
{{- $_ := set .Values "__imagetrustCA" $cache -}}
{{- end -}}
{{- $cache | toJson -}}
{{- end -}}

{{/* caBundle of the Provider objects: base64 PEM of the CA that signed the serving certificate. */}}
{{- define "imagetrust.caBundle" -}}
{{- if .Values.tls.caBundle -}}
{{- .Values.tls.caBundle -}}
{{- else if include "imagetrust.ownCA" . -}}
{{- (include "imagetrust.caPair" . | fromJson).crt -}}
{{- else -}}
{{- $from := "" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- $_ := include "imagetrust.tlsSecretName" . -}}
{{- $s := lookup "v1" "Secret" .Release.Namespace .Values.tls.existingSecret -}}
{{- if and $s $s.data (index $s.data "ca.crt") -}}{{- $from = index $s.data "ca.crt" -}}{{- end -}}
{{- end -}}
{{- required (printf "tls.caBundle is required with tls.mode=%s%s: base64 of the PEM CA certificate that signed the provider's serving certificate (Gatekeeper rejects a Provider without caBundle)" .Values.tls.mode (ternary " and a custom tls.certManager.issuerRef" "" (eq .Values.tls.mode "certManager"))) $from -}}
{{- end -}}
{{- end -}}
