# METADATA
# title: Image references
# description: >-
#   Parses container image references exactly as github.com/distribution/reference
#   v0.6.0 ParseDockerRef does (the grammar containerd and CRI-O pull with), with
#   digests validated as github.com/opencontainers/go-digest v1.0.0 does.
package lib.imagetrust.reference

# Grammar of distribution/reference v0.6.0 regexp.go, written out as literals (OPA regexes
# are Go RE2, so the same patterns match the same strings). The Go test
# TestRegoGrammarIsDistributions checks each against the exported distribution regexps.

# domain_and_port is the grammar of a registry host with an optional port (DomainRegexp).
domain_and_port := `(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?`

# remote_name is the grammar of a repository path: lowercase components separated by "/".
remote_name := `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*`

# dotted_host is domain_and_port with at least one "." and no IPv6 literal: a host the
# runtime always reads as the registry (registry.example.com[:port]), for patterns that
# settle references without parsing them.
dotted_host := `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+(?::[0-9]+)?`

# accepted_digest is a digest go-digest accepts: a supported algorithm and its length of
# lowercase hex.
accepted_digest := `(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})`

# tag_pattern is TagRegexp.
tag_pattern := `[\w][\w.-]{0,127}`

# digest_pattern is DigestRegexp (the reference grammar; go-digest validates further).
digest_pattern := `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}`

# reference_pattern is ReferenceRegexp: ^(name)(?::(tag))?(?:@(digest))?$
reference_pattern := `^((?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}))?$`

# anchored_name_pattern is anchoredNameRegexp: ^(?:(domain_and_port)/)?(remote_name)$
anchored_name_pattern := `^(?:((?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?)/)?([a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*)$`

# go-digest v1.0.0: the digest grammar used to tell "unsupported" from "invalid format".
_go_digest_re := `^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`

# Algorithms go-digest v1.0.0 accepts, with the length of their lowercase hex encoding.
digest_hex_lengths := {"sha256": 64, "sha384": 96, "sha512": 128}

# RepositoryNameTotalLengthMax in distribution/reference.
max_path_length := 255

_default_domain := "docker.io"

_legacy_default_domain := "index.docker.io"

_official_repo_prefix := "library/"

# parse returns an object describing how the container runtime reads the reference s:
#   valid: false, error: why, original: s                                      when it is rejected;
#   valid: true, original, domain, path, repository, tag, digest, implicit_registry,
#   effective_tag, normalized, pull                                            when it is accepted.
parse(s) := {
	"valid": true,
	"original": s,
	"domain": domain,
	"path": path_,
	"repository": repository,
	"tag": tag,
	"digest": digest,
	"implicit_registry": implicit,
	"effective_tag": object.get({"": "latest"}, tail, tag),
	"normalized": concat("", [repository, tag_part, at_digest]),
	"pull": concat("", [repository, object.get({"": tag_part}, at_digest, at_digest)]),
} if {
	is_string(s)
	count(s) <= 128 # then the path (255) and the tag (128) are within their length limits
	[[_, name, host, path, colon_tag, tag, at_digest, digest]] := regex.find_all_string_submatch_n(_fast_pattern, s, 1)
	[domain, path_, repository, implicit] := _fast_name(s, name, host, path)

	# What follows the repository in the normalised reference before the digest: ":tag",
	# ":latest" without a tag or digest (effective tag latest), nothing with only a digest;
	# the runtime pulls by digest if any.
	tail := concat("", [colon_tag, at_digest])
	tag_part := object.get({"": ":latest"}, tail, colon_tag)
} else := _parse_string(s) if {
	is_string(s)
} else := _invalid(s, "the image is not a string")

# The fast path: one match of s itself against the reference grammar, with the digest
# limited to what go-digest accepts, answers the common references of up to 128 characters
# without the step-by-step walk below, in as few evaluation steps as it can (every step is
# paid for every image of every review). It only ever answers what that walk would answer
# for s; anything it does not recognise (errors, a 64-character name, an underscore in the
# first component, a bracketed host without ":", longer references) falls through to the
# walk. Checked against the walk in reference_test.rego and against distribution/reference by
# the Go differential test and fuzzer.

# _fast_pattern is ^((?:(domain_and_port)/)?(remote_name))(:(tag))?(@(digest))?$ with the
# digest one of sha256/sha384/sha512 and its length of lowercase hex. The tag is [\w][\w.-]*
# here and its length is bounded by parse's length of s: tag_pattern's {0,127} would make the
# compiled program too large for Go's backtracking matcher and the match several times slower.
# A tag cannot hold "/", ":" or "@", so the tag the pattern captures is the one tag_pattern
# would capture. The tag and the digest are captured with and without their separator.
_fast_pattern := `^((?:((?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?)/)?([a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*))(:([\w][\w.-]*))?(@(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}))?$`

# _fast_name is [domain, path, repository, implicit_registry] of the match of s (the name as
# written, host: the first component when it matches domain_and_port and a "/" follows, else
# "", and the path after it), following splitDockerDomain; undefined when the walk must
# decide. The result object is built once, in parse: a function's arguments are an entry in
# the evaluation cache, so the fewer of them the better.
_fast_name(s, name, host, path) := [host, path, name, false] if {
	# The common case: a registry host such as registry.example.com[:port], named as the
	# runtime names it (not Docker Hub's).
	contains(host, ".")
	object.get({"docker.io": false, "index.docker.io": false}, host, true) # not Docker Hub
} else := ["docker.io", concat("", ["library/", path]), concat("", ["docker.io/library/", path]), true] if {
	# nginx: one component, read as docker.io/library/nginx (a 64-hex name is an error: any
	# reference of 64 characters without a host is left to the walk).
	host == ""
	not contains(path, "/")
	count(s) != 64
} else := ["docker.io", concat("/", [host, path]), concat("", ["docker.io/", name]), true] if {
	# bank/app: a first component that does not look like a host belongs to the path (it has
	# no ".", no ":", is not localhost, has no uppercase letter and is no bracketed address).
	host != ""
	not regex.match(`[.:A-Z\[]|^localhost$`, host)
} else := ["docker.io", p, concat("/", ["docker.io", p]), false] if {
	host in {"docker.io", "index.docker.io"}
	p := _library_prefix("docker.io", path)
} else := [host, path, name, false] if {
	# localhost[:port], host:port, an uppercase host: kept as written.
	_looks_like_host(host)
}

# splitDockerDomain's test of the first component (it has a "/" after it).
_looks_like_host(h) if contains(h, ".")

_looks_like_host(h) if contains(h, ":")

_looks_like_host("localhost")

_looks_like_host(h) if lower(h) != h

# is_valid is true when s is an image reference the container runtime accepts.
is_valid(s) if parse(s).valid

_invalid(s, msg) := {"valid": false, "original": s, "error": msg}

# The steps of ParseDockerRef, in its order, each evaluated once.
_parse_string(s) := _invalid(s, "the image is empty") if {
	s == ""
} else := _invalid(s, sprintf("a repository name cannot be a 64-character hexadecimal string (%s)", [s])) if {
	regex.match(`^[a-f0-9]{64}$`, s)
} else := _parse_split(s, _split_docker_domain(s))

_parse_split(s, d) := _invalid(s, sprintf("repository name (%s) must be lowercase", [remote])) if {
	remote := split(d.remainder, ":")[0]
	lower(remote) != remote
} else := _parse_match(s, d, concat("/", [d.domain, d.remainder]))

_parse_match(s, d, full) := _parse_named(s, d, m, _split_name(m[1])) if {
	m := regex.find_all_string_submatch_n(reference_pattern, full, 1)[0]
} else := _invalid(s, _format_error(s, full))

_parse_named(s, d, m, name) := _invalid(s, sprintf("repository path is longer than %d characters", [max_path_length])) if {
	count(name.path) > max_path_length
} else := _invalid(s, msg) if {
	m[3] != ""
	msg := digest_error(m[3])
} else := _valid(s, d, m, name)

_valid(s, d, m, name) := result if {
	tag := m[2]
	digest := m[3]
	repository := _repository(name.domain, name.path)
	result := {
		"valid": true,
		"original": s,
		"domain": name.domain,
		"path": name.path,
		"repository": repository,
		"tag": tag,
		"digest": digest,
		"implicit_registry": d.implicit,
		"effective_tag": _effective_tag(tag, digest),
		"normalized": _normalized(repository, tag, digest),
		"pull": _pull(repository, tag, digest),
	}
}

_repository(domain, path) := path if domain == ""

_repository(domain, path) := concat("/", [domain, path]) if domain != ""

_effective_tag(tag, _) := tag if tag != ""

_effective_tag(tag, digest) := "latest" if {
	tag == ""
	digest == ""
}

_effective_tag(tag, digest) := "" if {
	tag == ""
	digest != ""
}

_normalized(repository, tag, digest) := concat("", [repository, _tag_suffix(tag, digest), _digest_suffix(digest)])

_tag_suffix(tag, _) := concat("", [":", tag]) if tag != ""

_tag_suffix(tag, digest) := ":latest" if {
	tag == ""
	digest == ""
}

_tag_suffix(tag, digest) := "" if {
	tag == ""
	digest != ""
}

_digest_suffix(digest) := "" if digest == ""

_digest_suffix(digest) := concat("", ["@", digest]) if digest != ""

# The runtime pulls name@digest when there is a digest (the tag is ignored), else name:tag.
_pull(repository, _, digest) := concat("@", [repository, digest]) if digest != ""

_pull(repository, tag, digest) := concat(":", [repository, _effective_tag(tag, digest)]) if digest == ""

# anchoredNameRegexp split of a name into domain and path.
_split_name(name) := {"domain": m[1], "path": m[2]} if {
	m := regex.find_all_string_submatch_n(anchored_name_pattern, name, 1)[0]
} else := {"domain": "", "path": name}

# splitDockerDomain from distribution/reference normalize.go, plus whether the
# reference named its registry at all.
_split_docker_domain(s) := {"domain": _default_domain, "remainder": concat("", [_official_repo_prefix, s]), "implicit": true} if {
	not contains(s, "/")
} else := result if {
	parts := split(s, "/")
	first := parts[0]
	rest := concat("/", array.slice(parts, 1, count(parts)))
	d := _domain_choice(s, first, rest)
	result := {
		"domain": d.domain,
		"remainder": _library_prefix(d.domain, d.remainder),
		"implicit": d.implicit,
	}
}

_domain_choice(s, first, rest) := {"domain": first, "remainder": rest, "implicit": false} if {
	first == "localhost"
} else := {"domain": _default_domain, "remainder": rest, "implicit": false} if {
	first == _legacy_default_domain
} else := {"domain": first, "remainder": rest, "implicit": false} if {
	_has_domain_chars(first)
} else := {"domain": first, "remainder": rest, "implicit": false} if {
	lower(first) != first
} else := {"domain": _default_domain, "remainder": s, "implicit": true}

_has_domain_chars(s) if contains(s, ".")

_has_domain_chars(s) if contains(s, ":")

_library_prefix(domain, remainder) := concat("", [_official_repo_prefix, remainder]) if {
	domain == _default_domain
	not contains(remainder, "/")
} else := remainder

# _format_error explains a reference that fails the grammar (Parse returns only
# "invalid reference format" or "must be lowercase"; the hints are ours).
_format_error(_, full) := "repository name must be lowercase" if {
	regex.match(reference_pattern, lower(full))
} else := "contains whitespace" if {
	regex.match(`\s`, full)
} else := "a transport or URL prefix (such as docker://, https://) is not part of an image reference" if {
	contains(full, "://")
} else := "user information (user@host) is not part of an image reference" if {
	regex.match(`^[^/]*@[^/]*/`, full)
} else := "contains a character outside the reference grammar [a-z0-9._-/:@]" if {
	regex.match(`[^a-zA-Z0-9._\-/:@\[\]]`, full)
} else := "an empty path component or a misplaced separator" if {
	regex.match(`//|/$|^/|[._-]/|/[._-]|[._-]$|[._-]:|[._-]@`, full)
} else := sprintf("tag does not match %s", [tag_pattern]) if {
	regex.match(`:[^/@]*$`, full)
	not regex.match(concat("", [`:`, tag_pattern, `(@.*)?$`]), full)
} else := "invalid reference format"

# digest_error says why go-digest v1.0.0 rejects digest d (undefined when it accepts it).
digest_error(d) := sprintf("digest <%s> is malformed (want algorithm:hex)", [d]) if {
	not regex.match(`^[^:]+:.+$`, d)
} else := sprintf("digest algorithm <%s> is not supported (sha256, sha384 or sha512)", [alg]) if {
	alg := split(d, ":")[0]
	not digest_hex_lengths[alg]
	regex.match(_go_digest_re, d)
} else := sprintf("digest <%s> is malformed", [d]) if {
	alg := split(d, ":")[0]
	not digest_hex_lengths[alg]
} else := sprintf("%s digest must have %d hex characters, has %d", [alg, n, count(enc)]) if {
	[alg, enc] := _digest_parts(d)
	n := digest_hex_lengths[alg]
	count(enc) != n
} else := sprintf("%s digest must be lowercase hex", [alg]) if {
	[alg, enc] := _digest_parts(d)
	not regex.match(`^[a-f0-9]+$`, enc)
}

_digest_parts(d) := [alg, enc] if {
	alg := split(d, ":")[0]
	enc := substring(d, count(alg) + 1, -1)
}

# invalid_message is the violation message for container c whose image parsed as ref (invalid).
invalid_message(c, ref) := sprintf(
	"container <%s> image <%v> is not a valid image reference: %s; write [registry/]repository[:tag][@digest] as the container runtime parses it",
	[c.name, c.image, ref.error],
)
