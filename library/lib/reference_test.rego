package lib.imagetrust.reference_test

import data.lib.imagetrust.reference

hex64 := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

test_short_name if {
	reference.parse("nginx") == {
		"valid": true, "original": "nginx", "domain": "docker.io", "path": "library/nginx",
		"repository": "docker.io/library/nginx", "tag": "", "digest": "", "implicit_registry": true,
		"effective_tag": "latest", "normalized": "docker.io/library/nginx:latest",
		"pull": "docker.io/library/nginx:latest",
	}
}

test_user_repo_is_implicit if {
	r := reference.parse("bank/app:1.0")
	r.implicit_registry
	r.pull == "docker.io/bank/app:1.0"
}

test_named_registries_are_explicit if {
	every s in ["docker.io/nginx", "localhost/app", "localhost:5000/app", "index.docker.io/x", "Quay.io/x", "r.io/a/b", "Host/app"] {
		r := reference.parse(s)
		r.valid
		not r.implicit_registry
	}
}

test_index_docker_io if {
	r := reference.parse("index.docker.io/nginx:1")
	r.domain == "docker.io"
	r.path == "library/nginx"
}

test_tag_and_digest_pull_by_digest if {
	d := concat("", ["sha256:", hex64])
	r := reference.parse(concat("", ["r.io/app:1.0@", d]))
	r.tag == "1.0"
	r.digest == d
	r.effective_tag == "1.0"
	r.normalized == concat("", ["r.io/app:1.0@", d])
	r.pull == concat("", ["r.io/app@", d])
}

test_digest_only if {
	r := reference.parse(concat("", ["r.io/app@sha256:", hex64]))
	r.effective_tag == ""
	r.normalized == r.pull
}

test_underscore_domain_is_part_of_the_path if {
	r := reference.parse("a_b.c/foo")
	r.domain == ""
	r.repository == "a_b.c/foo"
	r.pull == "a_b.c/foo:latest"
}

test_is_valid if {
	reference.is_valid("nginx:1.25")
	not reference.is_valid("nginx:")
}

error_of(s) := reference.parse(s).error

test_errors if {
	error_of(5) == "the image is not a string"
	error_of("") == "the image is empty"
	startswith(error_of(hex64), "a repository name cannot be a 64-character hexadecimal string")
	error_of("Nginx") == "repository name (library/Nginx) must be lowercase"
	error_of("r.io/App:1") == "repository name (App) must be lowercase"
	error_of(" nginx") == "contains whitespace"
	startswith(error_of("docker://nginx"), "a transport or URL prefix")
	startswith(error_of("u@r.io/app"), "user information")
	startswith(error_of("r.io/app:1!"), "contains a character outside")
	startswith(error_of("r.io//app"), "an empty path component")
	startswith(error_of("r.io/app:-1"), "tag does not match")
	error_of("r.io/app::1") == "invalid reference format"
	error_of(concat("", ["r.io/", concat("", [x | some _ in numbers.range(1, 256); x := "a"])])) == "repository path is longer than 255 characters"
}

test_uppercase_checks if {
	# ParseNormalizedNamed checks the remainder up to the first ":" (here into the digest) ...
	error_of("r.io/app@SHA256:abc") == "repository name (app@SHA256) must be lowercase"

	# ... and Parse checks the whole reference again when the grammar fails.
	error_of("R.io/app:1@sha256:ABC") == "invalid reference format"
	error_of("r.io/app:Tag!") == "contains a character outside the reference grammar [a-z0-9._-/:@]"
}

test_digest_errors if {
	error_of(concat("", ["r.io/app@sha256:", substring(hex64, 0, 63)])) == "sha256 digest must have 64 hex characters, has 63"
	error_of(concat("", ["r.io/app@sha256:", upper(hex64)])) == "sha256 digest must be lowercase hex"
	error_of(concat("", ["r.io/app@md5:", substring(hex64, 0, 32)])) == "digest algorithm <md5> is not supported (sha256, sha384 or sha512)"
	error_of(concat("", ["r.io/app@sha1+x:", substring(hex64, 0, 40)])) == "digest algorithm <sha1+x> is not supported (sha256, sha384 or sha512)"
	reference.digest_error(concat("", ["Md5:", substring(hex64, 0, 32)])) == concat("", ["digest <Md5:", substring(hex64, 0, 32), "> is malformed"])
	reference.digest_error("nocolon") == "digest <nocolon> is malformed (want algorithm:hex)"
	not reference.digest_error(concat("", ["sha256:", hex64]))
}

test_invalid_message if {
	reference.invalid_message({"name": "app", "image": "x:"}, {"error": "why"}) == "container <app> image <x:> is not a valid image reference: why; write [registry/]repository[:tag][@digest] as the container runtime parses it"
}

test_fast_pattern_is_the_reference_grammar if {
	# The tag without its length bound, which the fast path checks apart (128 = 1 + 127).
	reference._fast_pattern == concat("", [
		`^((?:(`, reference.domain_and_port, `)/)?(`, reference.remote_name, `))(:(`,
		replace(reference.tag_pattern, "{0,127}", "*"),
		`))?(@(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}))?$`,
	])
	endswith(reference.tag_pattern, `[\w.-]{0,127}`)
}

# The fast path answers exactly what the step-by-step walk answers, in each of its branches
# and in the cases it leaves to the walk.
test_fast_path_agrees_with_the_walk if {
	d := concat("", ["sha256:", hex64])
	every s in [
		"registry.bank.internal/payments/api:2.4.1", concat("", ["r.io/app:1.0@", d]), concat("", ["r.io/app@", d]),
		"nginx", "nginx:1.25", concat("", ["nginx@", d]), "bank/app:1.0", "bank/app/x", "a-b/c",
		"docker.io/nginx", "docker.io/library/nginx:1", "index.docker.io/nginx", "index.docker.io/bank/app",
		"Index.Docker.io/nginx", "Docker.io/nginx", "localhost/app", "localhost:5000/app:1", "localhost",
		"[::1]:5000/app", "[::1]/app", "[abc]/app", "Host/app", "host:5000/app", "a_b.c/foo", "a_b/c",
		hex64, concat("", [hex64, ":1"]), concat("", ["r.io/app@sha512:", hex64, hex64]),
		concat("", ["r.io/app@sha256:", upper(hex64)]), "r.io/app::1", "docker://nginx", "",
		concat("", ["r.io/", a(255)]), concat("", ["r.io/", a(256)]), a(247), a(248), concat("", [a(200), "/b"]),
		"r.io/app", "R.IO:5000/app", "r.io:5000/a/b:v1.0-rc_1", concat("", ["r.io/app:1@", d]),
		concat("", ["r.io/app:", a(128)]), concat("", ["r.io/app:", a(129)]), concat("", ["nginx:", a(128)]),
		concat("", ["nginx:", a(129)]), concat("", ["r.io/app:", a(129), "@", d]), concat("", ["r.io/", a(256), ":1"]),
		concat("", ["docker.io/", a(248)]), concat("", ["docker.io/", a(247)]), "localhost:5000/app:_x",
		# around the fast path's 128 characters and its 64-character rule
		concat("", ["r.io/", a(123)]), concat("", ["r.io/", a(124)]), concat("", ["r.io/app:", a(119)]),
		concat("", ["r.io/app:", a(120)]), a(128), a(129), concat("", ["bank/", a(123)]), concat("", ["nginx:", a(122)]),
		a(64), a(63), substring(hex64, 0, 63), concat("", [substring(hex64, 0, 61), ":12"]), concat("", ["nginx:", a(58)]),
		concat("", ["r.io/app@", d, "x"]), concat("", ["docker.io/", a(118)]), concat("", ["localhost:5000/", a(113)]),
	] {
		reference.parse(s) == reference._parse_string(s)
	}
}

a(n) := concat("", [x | some _ in numbers.range(1, n); x := "a"])
