package scan

// PlatformScan is the value of one platform manifest of an index.
type PlatformScan struct {
	// Platform is "os/architecture[/variant]".
	Platform string
	Value    *Value
}

// CombinePlatforms answers an index that has no scan of its own from its platform
// manifests' scans: every platform's value is listed, and the index's value is the worst of
// them. It is scanned only when every platform is; its findings are the union (one per id,
// package and version, at the worst severity), its scan time the oldest platform's, its
// authority and source those of that oldest scan.
func CombinePlatforms(image, digest string, plats []PlatformScan, lim Limits) *Value {
	lim = lim.withDefaults()
	v := notScanned(image, digest, ReasonNoScan)
	if len(plats) == 0 {
		return v
	}
	v.Scanned, v.Reason = true, ""
	var all []Finding
	var oldest *Value
	for _, p := range plats {
		cp := *p.Value
		pv := &cp
		pv.Platform = p.Platform
		v.Platforms = append(v.Platforms, pv)
		if !pv.Scanned {
			if v.Scanned || reasonRank(pv.Reason) > reasonRank(v.Reason) {
				v.Reason = pv.Reason
			}
			v.Scanned = false
			continue
		}
		if pv.FindingsTruncated {
			v.FindingsTruncated = true
		}
		all = append(all, pv.Findings...)
		v.ScansConsidered += pv.ScansConsidered
		if oldest == nil || (pv.ScannedAt != "" && (oldest.ScannedAt == "" || pv.ScannedAt < oldest.ScannedAt)) {
			oldest = pv
		}
	}
	if !v.Scanned {
		v.dropPlatformFindings()
		return v
	}
	v.Source, v.Format, v.Authority, v.Signed = oldest.Source, oldest.Format, oldest.Authority, oldest.Signed
	v.Scanner, v.ScannedAt, v.SignedAt = oldest.Scanner, oldest.ScannedAt, oldest.SignedAt
	for _, pv := range v.Platforms {
		if !pv.Signed {
			v.Signed = false
		}
	}
	truncated := v.FindingsTruncated
	v.fillFindings(all, lim.Findings)
	v.FindingsTruncated = v.FindingsTruncated || truncated
	if truncated {
		// A platform's list was capped: its total bounds what the union may hold.
		for _, pv := range v.Platforms {
			v.FindingsTotal = max(v.FindingsTotal, pv.FindingsTotal)
			for s := range v.Counts {
				v.Counts[s] = max(v.Counts[s], pv.Counts[s])
				v.FixableCounts[s] = max(v.FixableCounts[s], pv.FixableCounts[s])
			}
		}
	}
	v.dropPlatformFindings()
	return v
}

// dropPlatformFindings leaves the platforms' findings out of the answer: the index's own list
// is their union, and the platforms keep their counts.
func (v *Value) dropPlatformFindings() {
	for _, pv := range v.Platforms {
		pv.Findings = nil
	}
}

// reasonRank orders not-scanned reasons from the least to the most telling.
func reasonRank(r string) int {
	switch r {
	case ReasonUnverifiable:
		return 3
	case ReasonNoTrustedScan:
		return 2
	case ReasonNoScan:
		return 1
	}
	return 0
}
