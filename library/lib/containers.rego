# METADATA
# title: Containers of a reviewed object
# description: >-
#   Every container, init container and ephemeral container of the reviewed Pod or of
#   the pod template of a Deployment, StatefulSet, DaemonSet, ReplicaSet,
#   ReplicationController, Job or CronJob, without Gatekeeper expansion.
package lib.imagetrust.containers

_fields := ["containers", "initContainers", "ephemeralContainers"]

_template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

# kind of the reviewed object: the admission request's kind, else the object's own.
kind := input.review.kind.kind

kind := input.review.object.kind if not input.review.kind.kind

# pod_spec is the pod spec that the reviewed object runs.
pod_spec := input.review.object.spec if kind == "Pod"

pod_spec := input.review.object.spec.template.spec if _template_kinds[kind]

pod_spec := input.review.object.spec.jobTemplate.spec.template.spec if kind == "CronJob"

# containers is the set of {"name", "image", "field"} for every container of the object.
containers contains {"name": _name(c), "image": object.get(c, "image", null), "field": field} if {
	some field in _fields
	some c in object.get(pod_spec, field, [])
}

_name(c) := n if {
	n := object.get(c, "name", null)
	is_string(n)
} else := "<unnamed>"

# image_values is the set of the image of every container as written (null when it has none):
# what a review starts from, one value per distinct image and no object per container.
image_values contains object.get(c, "image", null) if {
	some field in _fields
	some c in object.get(pod_spec, field, [])
}

# images is the set of image references as written, for batched lookups.
images contains image if {
	some image in image_values
	is_string(image)
}

# present is true when the object has at least one container.
present if {
	some field in _fields
	some _ in object.get(pod_spec, field, [])
}

# unsettled(pattern, max) is the subset of containers whose image is not settled: a string of
# at most max characters that matches pattern (which the caller anchors, and which never
# matches ""; settle_nothing when nothing settles). One pass over the containers, without a
# set of images in between and without a function call per container (each call is an entry
# in the evaluation cache): anything but a string is tested as "", which no pattern settles.
unsettled(pattern, max) := {{"name": _name(c), "image": image, "field": field} |
	some field in _fields
	some c in object.get(pod_spec, field, [])
	image := object.get(c, "image", null)
	text := object.get({"string": image}, type_name(image), "")
	not [regex.match(pattern, text), count(text) <= max] == [true, true]
}

# settles is true when image is one that unsettled(pattern, max) leaves out.
settles(pattern, max, image) if {
	text := object.get({"string": image}, type_name(image), "")
	[regex.match(pattern, text), count(text) <= max] == [true, true]
}

# settle_nothing is a pattern that matches no string, for a template with nothing to settle.
settle_nothing := `[^\x00-\x{10FFFF}]`

# of_images(values) is the subset of containers whose image is one of values (a set of
# image_values), without building the others.
of_images(values) := set() if {
	count(values) == 0
} else := {{"name": _name(c), "image": image, "field": field} |
	some field in _fields
	some c in object.get(pod_spec, field, [])
	image := object.get(c, "image", null)
	image in values # not values[image]: an image written as false is in values too
}
