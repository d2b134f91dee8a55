# mailstate: the contract between mailstate and its server scripts, in one table.
#
# The exit codes that server-activate.sh, server-push.sh and server-wait.sh report, and the
# files under meta/ in a stage that tell server-activate.sh what to do. mailstate puts this
# table in front of every script that uses it (after server-lib.sh), and reads it itself
# (mailstate/server_contract.py: the Exit and Meta enums). The scripts name only these
# variables, never the numbers or the file names; a unit test checks both sides.
#
# One assignment a line, NAME=value, each with a comment saying what it means. The read
# scripts do not use the table, so the read-only program (which embeds server-read.sh) does
# not change with it.

# shellcheck disable=SC2034  # the variables are used by the scripts put after this table

# Exit codes (0: done). 1x, 75 and 76: refused, nothing was changed; 2x: see each line.
EXIT_CHECK_FAILED=10    # a check failed (postmap, doveconf, sievec, the mail directory's owner)
EXIT_NO_GENERATION=11   # rollback: the server keeps no generation of that name
EXIT_UNSAFE_PATH=12     # a path is a symbolic link, not the owner's or writable by others
EXIT_NOT_STORED=13      # the stage, the journal or the new files could not be written (disk full?)
EXIT_NOT_KEPT=14        # the current files could not be kept as a generation (disk full?)
EXIT_RESTORED=20        # a step failed after the swap; the previous files were put back
EXIT_KILLED=21          # the activation died without recording an outcome (server-wait.sh)
EXIT_NOT_STARTED=22     # the activation never started: the upload was incomplete (server-wait.sh)
EXIT_NOT_RESTORED=23    # the previous files could not all be put back; the journal stays
EXIT_LOCKED=75          # another apply holds the lock (EX_TEMPFAIL)
EXIT_STALE=76           # the plan is stale: a file or main.cf setting changed since it was made
EXIT_STOPPED=143        # stopped by SIGTERM or SIGINT; the journal, if any, is left to the next run

# Files under meta/ in a stage (each written by mailstate, read by server-activate.sh).
# A generation keeps copies of write, remove, postmap, reload, cmd_* and lmtp_socket under the
# same names, and a newer mailstate rolls back to generations an older one kept: a rename here
# needs a fallback for those.
META_MODE=mode                          # "apply", "rollback" (to META_ROLLBACK) or "recover"
META_STATE_DIR=state_dir                # the state directory (STATE_DIR)
META_LOCK_TIMEOUT=lock_timeout          # seconds to wait for the lock (flock -w)
META_HOLDER=holder                      # who runs this apply, for STATE_DIR/lock.holder
META_DB_TYPE=db_type                    # Postfix's map type: hash, btree, lmdb or cdb
META_GENERATION=generation              # the generation this apply makes (recover: the one asked)
META_ROLLBACK=rollback                  # rollback: the generation to put back
META_EXPECT=expect                      # "SHA256 PATH" (or "absent PATH") the plan saw, per file
META_EXPECT_POSTCONF=expect_postconf    # "KEY<tab>VALUE" the plan saw, per main.cf setting
# shellcheck disable=SC2209  # a file name, not the output of the command write
META_WRITE=write                        # "MODE GROUP PATH" per new file (its content in files/PATH)
META_REMOVE=remove                      # a path per file to remove
META_POSTMAP=postmap                    # a path per new file that postmap compiles
META_SIEVE=sieve                        # a path per new Sieve script (sievec checks it)
META_CHECK_DOVECOT=check_dovecot        # a path per new Dovecot file (doveconf -n checks them)
META_DOVECOT_FRAGMENT=dovecot_fragment  # the path of mailstate's Dovecot configuration file
META_POSTGREY_DEFAULT=postgrey_default  # the path of postgrey's options (/etc/default/postgrey)
META_POSTCONF=postconf                  # "KEY = VALUE" per main.cf setting to set
META_RELOAD=reload                      # a service per line to reload: postfix, dovecot, postgrey
META_CMD=cmd_                           # cmd_SERVICE: the command that reloads SERVICE (a prefix)
META_VMAIL=vmail                        # "UID GID DIRECTORY": the mail user and the mail directory
META_LMTP_SOCKET=lmtp_socket            # Dovecot's LMTP socket, waited for after its reload
META_PRUNE=prune                        # a generation per line to remove once the apply is done
META_PROBE=probe                        # a Dovecot user per line: its INBOX is opened after reloads
META_MANIFEST=manifest.json             # becomes STATE_DIR/manifest.json
META_STATE=state.json                   # becomes STATE_DIR/state.json
