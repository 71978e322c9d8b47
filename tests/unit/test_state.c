/* test_state.c - lifecycle transitions: the legal ones and only those. */
#include "unit.h"

#include "vmm/state.h"

static void test_transitions(void **state)
{
    (void)state;
    assert_true(vm_state_allowed(VM_CREATED, VM_INITIALIZING));
    assert_true(vm_state_allowed(VM_INITIALIZING, VM_RUNNING));
    assert_true(vm_state_allowed(VM_INITIALIZING, VM_FAILED));
    assert_true(vm_state_allowed(VM_INITIALIZING, VM_PAUSED)); /* a restore */
    assert_true(vm_state_allowed(VM_RUNNING, VM_PAUSED));
    assert_true(vm_state_allowed(VM_PAUSED, VM_RUNNING));
    assert_true(vm_state_allowed(VM_RUNNING, VM_STOPPING));
    assert_true(vm_state_allowed(VM_PAUSED, VM_STOPPING));
    assert_true(vm_state_allowed(VM_STOPPING, VM_STOPPED));
    assert_true(vm_state_allowed(VM_STOPPING, VM_FAILED));

    assert_false(vm_state_allowed(VM_CREATED, VM_RUNNING));  /* start skips init */
    assert_false(vm_state_allowed(VM_CREATED, VM_PAUSED));   /* pause before start */
    assert_false(vm_state_allowed(VM_RUNNING, VM_RUNNING));  /* start twice */
    assert_false(vm_state_allowed(VM_RUNNING, VM_INITIALIZING));
    assert_false(vm_state_allowed(VM_PAUSED, VM_PAUSED));
    assert_false(vm_state_allowed(VM_STOPPED, VM_RUNNING));  /* no restart */
    assert_false(vm_state_allowed(VM_FAILED, VM_RUNNING));
    assert_false(vm_state_allowed(VM_STOPPING, VM_RUNNING));
    assert_false(vm_state_allowed(VM_RUNNING, VM_STOPPED));  /* always via stopping */
    assert_false(vm_state_allowed((enum vm_state)99, VM_RUNNING));

    /* Every state can fail except the final ones. */
    for (int s = 0; s < VM_STATE_COUNT; s++)
        assert_int_equal(vm_state_allowed((enum vm_state)s, VM_FAILED),
                         !vm_state_final((enum vm_state)s));
}

static void test_names(void **state)
{
    (void)state;
    const char *want[] = {"created", "initializing", "running", "paused",
                          "stopping", "stopped", "failed"};
    for (int s = 0; s < VM_STATE_COUNT; s++)
        assert_string_equal(vm_state_name((enum vm_state)s), want[s]);
    assert_string_equal(vm_state_name((enum vm_state)-1), "invalid");
}

int main(void)
{
    RUN(cmocka_unit_test(test_transitions), cmocka_unit_test(test_names));
}
