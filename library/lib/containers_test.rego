package lib.imagetrust.containers_test

import data.lib.imagetrust.containers

spec := {
	"containers": [{"name": "a", "image": "a:1"}],
	"initContainers": [{"name": "i", "image": "i:1"}],
	"ephemeralContainers": [{"name": "e", "image": "e:1"}, {"image": 3}],
}

want := {
	{"name": "a", "image": "a:1", "field": "containers"},
	{"name": "i", "image": "i:1", "field": "initContainers"},
	{"name": "e", "image": "e:1", "field": "ephemeralContainers"},
	{"name": "<unnamed>", "image": 3, "field": "ephemeralContainers"},
}

review(kind, object) := {"review": {"kind": {"kind": kind}, "object": object}}

test_pod if {
	containers.containers == want with input as review("Pod", {"spec": spec})
	containers.images == {"a:1", "i:1", "e:1"} with input as review("Pod", {"spec": spec})
}

test_pod_template_kinds if {
	every kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"] {
		containers.containers == want with input as review(kind, {"spec": {"template": {"spec": spec}}})
	}
}

test_cronjob if {
	containers.containers == want with input as review("CronJob", {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}})
}

test_kind_from_object if {
	containers.containers == want with input as {"review": {"object": {"kind": "Pod", "spec": spec}}}
}

test_other_kinds_have_none if {
	count(containers.containers) == 0 with input as review("ConfigMap", {"data": {"image": "x"}})
}
