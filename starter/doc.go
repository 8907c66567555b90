// Command starter is the CLI for HR systems, managers and operators: it
// starts lifecycle workflows (hire), and shows what happened (status).
package main
