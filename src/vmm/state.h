/* state.h - the VM lifecycle state machine.
 *
 *   created -> initializing -> running <-> paused
 *                    |            |          |
 *                    v            v          v
 *                  failed      stopping -> stopped
 *
 * Any state but stopped may also move to failed. Pure logic; the VM object
 * holds the current state under its lock.
 */
#ifndef ARCVM_STATE_H
#define ARCVM_STATE_H

#include <stdbool.h>

enum vm_state {
    VM_CREATED,
    VM_INITIALIZING,
    VM_RUNNING,
    VM_PAUSED,
    VM_STOPPING,
    VM_STOPPED,
    VM_FAILED,
};
#define VM_STATE_COUNT 7

/* Lower-case name shown to users ("running", ...). */
const char *vm_state_name(enum vm_state s);
/* Whether the lifecycle allows moving from @from to @to. */
bool vm_state_allowed(enum vm_state from, enum vm_state to);
/* Whether @s is final (stopped or failed). */
bool vm_state_final(enum vm_state s);

#endif
