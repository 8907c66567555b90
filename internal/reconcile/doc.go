// Package reconcile holds what reconciliation finds and where it keeps it:
// the classes of difference between an application and what HR and policy
// say it should hold (Item, Class, Action), and Store, the PostgreSQL side
// of a run (migration 0005_reconcile.sql): the full list of findings in
// reconcile_items, keyed by the run's workflow ID, and the scratch table
// reconcile_seen that lets a scan find people with no account without
// keeping every account in memory.
//
// The reconciliation workflow never sees the full list: its activities page
// through the applications, write every finding here and hand the workflow
// counts and a few samples, so 100,000 accounts neither fill a worker's
// memory nor the workflow history. `starter reconcile --output json` reads
// the full list back from here.
//
// Store reads the synced roster (roster_state), the reserved usernames and
// the access ledger directly, in batches of one page of accounts; it never
// writes to them.
package reconcile
