package check

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
)

// JUnit XML as CI systems read it (GitLab, Jenkins, GitHub test reporters): one test suite per
// file, one test case per object, a failure per deny finding, an error per incomplete result
// (the constraint could not decide); warn and dryrun findings go to the case's system-out.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	TestCases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string         `xml:"name,attr"`
	ClassName string         `xml:"classname,attr"`
	Failures  []junitFailure `xml:"failure,omitempty"`
	Errors    []junitFailure `xml:"error,omitempty"`
	SystemOut string         `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, rep *Report) error {
	type key struct{ file, object string }
	cases := map[key]*junitCase{}
	var order []key
	for _, f := range rep.Findings {
		k := key{f.File, f.Object}
		c := cases[k]
		if c == nil {
			c = &junitCase{Name: f.Object, ClassName: f.File}
			cases[k] = c
			order = append(order, k)
		}
		loc := fmt.Sprintf("%s:%d:%d", f.File, f.Line, f.Column)
		switch f.Action {
		case ActionDeny:
			c.Failures = append(c.Failures, junitFailure{Message: f.Constraint + ": " + f.Message, Type: f.Constraint, Text: loc + ": " + f.Message})
		case ActionIncomplete:
			c.Errors = append(c.Errors, junitFailure{Message: f.Constraint + ": incomplete: " + f.Message, Type: ActionIncomplete, Text: loc + ": " + f.Message})
		default:
			c.SystemOut += fmt.Sprintf("%s: %s %s: %s\n", loc, f.Action, f.Constraint, f.Message)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].file < order[j].file })
	out := junitSuites{Name: "imagetrust check"}
	suites := map[string]*junitSuite{}
	var files []string
	for _, k := range order {
		s := suites[k.file]
		if s == nil {
			s = &junitSuite{Name: k.file}
			suites[k.file] = s
			files = append(files, k.file)
		}
		c := cases[k]
		s.TestCases = append(s.TestCases, *c)
		s.Tests++
		if len(c.Failures) > 0 {
			s.Failures++
		} else if len(c.Errors) > 0 {
			s.Errors++
		}
	}
	for _, f := range files {
		s := suites[f]
		out.Suites = append(out.Suites, *s)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
	}
	// Objects without findings pass: one summary case says how many were checked.
	passed := junitSuite{Name: "imagetrust check", Tests: 1, TestCases: []junitCase{{
		Name: fmt.Sprintf("%d object(s) checked", rep.Objects), ClassName: "imagetrust",
	}}}
	if len(rep.Incomplete) > 0 {
		passed.Errors = 1
		passed.TestCases[0].Errors = []junitFailure{{Message: "the check could not be completed", Type: "incomplete", Text: strings.Join(rep.Incomplete, "\n")}}
	}
	out.Suites = append(out.Suites, passed)
	out.Tests++
	out.Errors += passed.Errors
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
