package main

// version and revision are set by `make image` (-ldflags -X) and logged at start.
var version, revision = "devel", ""
