{{/*
Static facts about each model service: the BentoML service to serve and the env var that receives
the weights path from `model`.
*/}}
{{- define "modgate.modelServices" -}}
speech:
  bento: services.speech.service:Speech
  envPrefix: MODGATE_SPEECH_
  weightsEnv: MODGATE_SPEECH_MODEL_PATH
vision:
  bento: services.vision.service:Vision
  envPrefix: MODGATE_VISION_
  weightsEnv: MODGATE_VISION_CHECKPOINT
text:
  bento: services.text.service:Text
  envPrefix: MODGATE_TEXT_
  weightsEnv: MODGATE_TEXT_MODEL_PATH
{{- end -}}

{{/*
The values one model-service Deployment runs with: stable values, with canary.image /
canary.model / canary.config merged over them for the canary.
(dict "root" $ "component" "speech" "variant" "canary") -> YAML {image, model, config, replicas}
*/}}
{{- define "modgate.modelServiceEffective" -}}
{{- $c := index .root.Values .component -}}
{{- $image := deepCopy $c.image -}}
{{- $model := deepCopy $c.model -}}
{{- $config := deepCopy ($c.config | default dict) -}}
{{- if eq .variant "canary" -}}
{{- /* Field by field: an empty canary field means "same as stable". */ -}}
{{- range $key, $value := $c.canary.image -}}
{{- if $value -}}{{- $_ := set $image $key $value -}}{{- end -}}
{{- end -}}
{{- $model = mergeOverwrite $model (deepCopy ($c.canary.model | default dict)) -}}
{{- $config = mergeOverwrite $config (deepCopy ($c.canary.config | default dict)) -}}
{{- end -}}
{{- toYaml (dict "image" $image "model" $model "config" $config) -}}
{{- end -}}
