//! Small-file compaction of inlet's tables (planned: policies, cron
//! schedules, bin planning, rewriting, commits with `dataChange=false`,
//! vacuum). The crate exists so the workspace has its final shape; it
//! exposes nothing yet and no command reaches it.
