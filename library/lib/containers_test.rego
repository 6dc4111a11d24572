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

# unsettled leaves out exactly the string images of at most max characters that match the
# pattern: a non-string image (a number, null, a list holding a matching string, a missing
# one) is never settled, nor is a longer match; settle_nothing settles nothing, "" included.
test_unsettled if {
	s := {
		"containers": [
			{"name": "a", "image": "r.io/a:1"}, {"name": "b", "image": "r.io/bb:1"},
			{"name": "n", "image": null}, {"name": "m"}, {"name": "l", "image": ["r.io/a:1"]},
		],
		"initContainers": [{"name": "e", "image": ""}, {"name": "x", "image": "x.io/a:1"}, {"name": "d", "image": 7}],
	}
	pattern := `^r\.io/[a-z]+:1$`
	names := {c.name | some c in containers.unsettled(pattern, 8)} with input as review("Pod", {"spec": s})
	names == {"b", "n", "m", "l", "e", "x", "d"}
	{c.name | some c in containers.unsettled(pattern, 9)} == {"n", "m", "l", "e", "x", "d"} with input as review("Pod", {"spec": s})
	count(containers.unsettled(containers.settle_nothing, 1000)) == 8 with input as review("Pod", {"spec": s})
	containers.settles(pattern, 8, "r.io/a:1")
	not containers.settles(pattern, 7, "r.io/a:1")
	not containers.settles(pattern, 8, ["r.io/a:1"])
	not containers.settles(containers.settle_nothing, 8, "")
	not containers.present with input as review("Pod", {"spec": {"containers": []}})
	containers.present with input as review("Pod", {"spec": s})
}
