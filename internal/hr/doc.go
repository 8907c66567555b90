// Package hr holds the HR record of a person as the HR system sends it, its
// validation, and the reader for roster CSV exports. It is pure Go: no I/O
// beyond the io.Reader it is given, so workflows and policy can share it.
package hr
