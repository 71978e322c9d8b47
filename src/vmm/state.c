/* state.c - lifecycle transition table; see state.h. */
#include "vmm/state.h"

#include <stddef.h>

static const char *const names[VM_STATE_COUNT] = {
    "created", "initializing", "running", "paused", "stopping", "stopped", "failed",
};

#define BIT(s) (1u << (s))
/* allowed[from] is the set of states reachable in one step. */
static const unsigned allowed[VM_STATE_COUNT] = {
    [VM_CREATED] = BIT(VM_INITIALIZING) | BIT(VM_FAILED),
    /* A restored VM comes up paused (Firecracker's snapshot load). */
    [VM_INITIALIZING] = BIT(VM_RUNNING) | BIT(VM_PAUSED) | BIT(VM_FAILED),
    [VM_RUNNING] = BIT(VM_PAUSED) | BIT(VM_STOPPING) | BIT(VM_FAILED),
    [VM_PAUSED] = BIT(VM_RUNNING) | BIT(VM_STOPPING) | BIT(VM_FAILED),
    [VM_STOPPING] = BIT(VM_STOPPED) | BIT(VM_FAILED),
    [VM_STOPPED] = 0,
    [VM_FAILED] = 0,
};

const char *vm_state_name(enum vm_state s)
{
    return (unsigned)s < VM_STATE_COUNT ? names[s] : "invalid";
}

bool vm_state_allowed(enum vm_state from, enum vm_state to)
{
    if ((unsigned)from >= VM_STATE_COUNT || (unsigned)to >= VM_STATE_COUNT)
        return false;
    return allowed[from] & BIT(to);
}

bool vm_state_final(enum vm_state s)
{
    return s == VM_STOPPED || s == VM_FAILED;
}
