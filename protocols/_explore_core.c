/* The fast explorer's compiled core: the whole breadth-first search of the ownership
 * spec for the strategies whose moves protocols/explore_fast.py computes on tuples
 * (classic, chief, chief+cache, with or without the scripted client; the spec's own step).
 *
 * Every function below is a transcription of the function of the same name in
 * protocols/explore_tuple.py (World: kernel, RMGR, task server), protocols/explore_linux.py
 * (an L4Linux server's calls), protocols/explore_checks.py (the state invariants) and
 * protocols/explore_fast.py (moves, canonical form, search order), protocols/explore_script.py
 * (the scripted client's calls and transition invariants 2 and 8); their docstrings
 * give the rules and the C sources they follow.  tests/test_explore_core.py holds this
 * core equal to them: successors, verdicts, and whole searches against the reference.
 *
 * A state is a struct of int32 fields (St); a packed thread id is
 * task | lthread << 11 | version << 18 and must stay below 2**31 (versions below
 * 8192): a step that would leave that range stops the search as "unsupported" and the
 * Python search runs instead.  So does any state beyond the fixed capacities below.
 *
 * The canonical form is the minimum, over the permutations of the L4Linux servers'
 * numbers, of a serialisation of the same parts explore_fast.canonical reads; it gives
 * the same classes (see protocols/explore_core.py).  The visited set holds 64-bit
 * fingerprints of it with the parent's fingerprint and the move index, as
 * explore_fast does; the frontier holds states as zigzag varints.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t V;

#define MAXT 32   /* task numbers */
#define MAXS 4    /* L4Linux servers */
#define MAXP 16   /* processes per server, zombies included */
#define MAXC 8    /* cache slots per server */
#define MAXR 64   /* retired ids per server */
#define MAXV 24   /* distinct versions per task number in one state */
#define MAXCODE 16384
#define MAXPERM 24

enum { C_ = 0, A_, V_, M_, P_, E_, S_, PR_ };

/* Constants of protocols.{rmgr,kernel,task_server,l4linux,ids}; explore_core.py checks
 * them against the modules at import. */
#define FREE_ (-1)
#define RESERVED_ 0
#define RMGR 4
#define NO_OWNER (-1)
#define ST_FREE 0
#define ST_ALLOCATED 1
#define ST_CHIEF 2
#define EIP_L4 12288
#define EIP_PROC 16384
#define EIP_TS 8192
#define KILLED (-9)
#define INIT_PID 1
#define MAX_MCP 255
#define VERSION_LOW 1024
#define VERSIONS 16384
#define PRIO_USER 10
#define PRIO_SERVER 64
#define FIRST_NUMBER 5
#define SIGMA0 2
#define EIP_SCRIPT 4096

enum { CLASSIC = 0, CHIEF = 1, CHIEF_CACHE = 2 };

typedef struct {
    V pid, task, parent, zombie, status;
} Proc;

typedef struct {
    V me, next_pid;
    int np, nslots, ncache, nret;
    Proc p[MAXP];
    V slots[MAXC], cache[MAXC], ret[MAXR];
} Srv;

typedef struct {
    V k[MAXT][8];
    V own[MAXT], ver[MAXT], used[MAXT];
    uint64_t handed, reset;
    int has_ts;
    V rec[MAXT][4];
    V exits;
    int ns;
    Srv lx[MAXS];
} St;

typedef struct {
    int T, ts_me, ts_first, nrec, ncl, clients[MAXS];
    V quota;
    uint64_t trusted;
    int strategy, cache_cap, processes;
    int fix_task_new, fix_refusal, fix_free, fix_free_task, fix_kill, fix_cache;
    int window, inactive, rmgr_v, symmetry, pool_start;
    unsigned inv;
    int script, check_task_new, check_owner;
    int nperm;
    V map[MAXPERM][MAXT]; /* per permutation: number -> its new number */
} Cfg;

typedef struct {
    const Cfg *c;
    const char *bad; /* set when the state left what this core supports */
    V *cmp;          /* 2 * MAXCODE values for the scripted client's moves (moves()) */
} Ctx;

#define BAD(x, why) ((x)->bad = (x)->bad ? (x)->bad : (why))

static inline int inmask(uint64_t m, V v) { return v >= 0 && v < 64 && ((m >> v) & 1); }
static inline uint64_t bit(V v) { return (v >= 0 && v < 64) ? (1ull << v) : 0; }

static V tid(Ctx *x, V n, V version) {
    if (version < 0 || version >= 8192) {
        BAD(x, "a version beyond 8191");
        return n;
    }
    return n | version << 18;
}

static inline V code_of(V owner) { return owner == FREE_ ? 0 : owner == RESERVED_ ? 1 : owner; }
static inline V holder(V task) {
    V b = task & 255;
    return b == 0 ? FREE_ : b == 1 ? RESERVED_ : b;
}

/* -- the kernel ---------------------------------------------------------------------- */

static uint64_t doomed(Ctx *x, St *w, int n) {
    int T = x->c->T, any = 0;
    for (int m = 0; m < T; m++)
        if (w->k[m][C_] == n && w->k[m][A_]) {
            any = 1;
            break;
        }
    if (!any) return bit(n);
    uint64_t killed = bit(n);
    int stack[MAXT + 1], sp = 0;
    stack[sp++] = n;
    while (sp) {
        int f = stack[--sp];
        for (int m = 1; m < T; m++) {
            V ch = w->k[m][C_];
            if (ch == f && ch != m && w->k[m][A_] && !inmask(killed, m)) {
                killed |= bit(m);
                stack[sp++] = m;
            }
        }
    }
    return killed;
}

static void delete_(Ctx *x, St *w, V caller, int n, uint64_t killed) {
    for (int m = 0; m < x->c->T; m++) {
        V *row = w->k[m];
        if (inmask(killed, m)) {
            V chief = m == n ? row[C_] : caller;
            V ver = row[V_];
            memset(row, 0, sizeof(V) * 8);
            row[C_] = chief;
            row[V_] = ver;
        } else if (m && inmask(killed, row[C_])) {
            row[C_] = caller;
        }
    }
}

static int task_new_nil(Ctx *x, St *w, V caller, V n, V heir) {
    int T = x->c->T;
    if (n == 0 || n >= T || n < 0 || w->k[n][C_] != caller) return 0;
    int active = w->k[n][A_] != 0;
    uint64_t gone = active ? doomed(x, w, n) : 0;
    int exists = heir >= 0 && heir < T && w->k[heir][A_] && !inmask(gone, heir);
    if (!exists && x->c->fix_task_new) return 0;
    if (active) delete_(x, w, caller, n, gone);
    if (!exists) return 0;
    w->k[n][C_] = heir;
    return 1;
}

static int task_new(Ctx *x, St *w, V caller, V dest, V mcp, V pager, V eip, V esp) {
    int T = x->c->T;
    V n = dest & 2047;
    if (n == 0 || n >= T || w->k[n][C_] != caller) return 0;
    V cm = w->k[caller][M_], cp = w->k[caller][PR_];
    if (w->k[n][A_]) delete_(x, w, caller, n, doomed(x, w, n));
    V *row = w->k[n];
    row[C_] = caller;
    row[A_] = 1;
    row[V_] = dest >> 18;
    row[M_] = cm < mcp ? cm : mcp;
    row[P_] = pager;
    row[E_] = eip;
    row[S_] = esp;
    row[PR_] = cp;
    return 1;
}

static V schedule(Ctx *x, St *w, V caller, V dest, V prio) {
    V n = dest & 2047;
    if (((dest >> 11) & 127) || n >= x->c->T || !w->k[n][A_] || w->k[n][V_] != dest >> 18)
        return -1;
    V old = w->k[n][PR_];
    if (prio < 0) return old;
    if (prio > MAX_MCP || prio > w->k[caller][M_]) return -1;
    w->k[n][PR_] = prio;
    return old;
}

/* -- RMGR ---------------------------------------------------------------------------- */

static int reserve(Ctx *x, St *w, V n, V caller) { /* 1 held, 2 reserved now, 0 refused */
    V me = caller & 255;
    V held = code_of(w->own[n]);
    if (held == me) return 1;
    if (held != 0) return 0;
    if (me >= x->c->T) {
        BAD(x, "a caller beyond the task numbers");
        return 0;
    }
    if (w->used[me] >= (inmask(w->reset, me) ? 0 : x->c->quota)) return 0;
    w->own[n] = holder(caller);
    w->used[me] += 1;
    return 2;
}

static void refused(Ctx *x, St *w, V n, V caller, int reserved) {
    if (reserved == 1 && x->c->fix_refusal) return;
    V code = code_of(w->own[n]);
    if (code == (caller & 255) || code == 0) w->own[n] = FREE_;
}

static int get_task(Ctx *x, St *w, V sender, V n) {
    if (n < 0 || n >= x->c->T) return 0;
    V caller = sender & 2047;
    int reserved = reserve(x, w, n, caller);
    if (!reserved) return 0;
    if (task_new_nil(x, w, RMGR, n, caller)) return 1;
    refused(x, w, n, caller, reserved);
    return 0;
}

static int rmgr_task_new(Ctx *x, St *w, V caller, V dest, V mcp, V eip, V pager) {
    V n = dest & 2047;
    if (n >= x->c->T) {
        BAD(x, "a task beyond the task numbers");
        return 0;
    }
    int reserved = reserve(x, w, n, caller);
    if (!reserved) return 0;
    V cap = inmask(w->reset, caller & 255) ? 0 : MAX_MCP;
    if (cap < mcp) mcp = cap;
    if (!task_new(x, w, RMGR, dest, mcp, pager, eip, 0)) {
        refused(x, w, n, caller, reserved);
        return 0;
    }
    w->ver[n] = dest >> 18;
    w->reset |= bit(n & 255);
    return 1;
}

static void set_task_id(Ctx *x, St *w, V caller, V task) {
    (void)x;
    V n = task & 2047;
    if (code_of(w->own[n]) != caller) return;
    if (n < 256) {
        w->reset &= ~bit(n);
        w->used[n] = 0;
    }
}

static void set_prio(Ctx *x, St *w, V caller, V task, V prio) {
    if (schedule(x, w, RMGR, task, -1) < 0) return;
    if ((inmask(w->reset, caller & 255) ? 0 : MAX_MCP) < prio) return;
    schedule(x, w, RMGR, task, prio);
}

/* RMGR's l4_task_new(n, RMGR): whether it was done; the kernel table unchanged if not */
static int back_to_rmgr(Ctx *x, St *w, V n) {
    V saved[MAXT][8];
    memcpy(saved, w->k, sizeof saved);
    if (task_new_nil(x, w, RMGR, n, RMGR)) return 1;
    memcpy(w->k, saved, sizeof saved);
    return 0;
}

static int free_one(Ctx *x, St *w, V n) {
    if (!back_to_rmgr(x, w, n)) return 0;
    w->own[n] = FREE_;
    w->handed &= ~bit(n);
    return 1;
}

static int free_task(Ctx *x, St *w, V sender, V n) {
    if (n < 0 || n >= x->c->T) return 0;
    V caller = sender & 2047;
    V code = code_of(w->own[n]);
    if (code != (caller & 255) && code != 0) return 0;
    if (x->c->fix_free_task && w->own[n] != FREE_ && !back_to_rmgr(x, w, n)) return 0;
    w->own[n] = FREE_;
    return 1;
}

static int free_client(Ctx *x, St *w, V caller, V owner) {
    int T = x->c->T;
    if (owner < 5 || owner >= T || w->own[owner] != RMGR) return 0;
    uint64_t trusted = x->c->trusted;
    if (!inmask(trusted, caller) && (caller != owner || trusted)) return 0;
    if (!free_one(x, w, owner)) return 0;
    int list[MAXT], count = 0;
    for (int n = 0; n < T; n++)
        if (w->own[n] == owner) list[count++] = n;
    for (int i = 0; i < count; i++) free_one(x, w, list[i]);
    return 1;
}

/* -- the task server ----------------------------------------------------------------- */

static inline int ts_alive(Ctx *x, St *w) { return w->has_ts && w->k[x->c->ts_me][A_]; }
static inline V ts_id(Ctx *x, St *w) { return tid(x, x->c->ts_me, w->k[x->c->ts_me][V_]); }

static V *record(Ctx *x, St *w, V n) {
    int i = n - x->c->ts_first;
    return (w->has_ts && i >= 0 && i < x->c->nrec) ? w->rec[i] : NULL;
}

static int grants(Ctx *x, St *w, V n) { return get_task(x, w, ts_id(x, w), n); }

static void set_task(Ctx *x, St *w, V n, V chief) {
    int T = x->c->T;
    if (w->k[n][A_]) {
        int clan[4 * MAXT], nclan = 0, stack[4 * MAXT], sp = 0;
        stack[sp++] = n;
        while (sp) {
            int f = stack[--sp];
            for (int m = 1; m < T; m++)
                if (w->k[m][C_] == f && w->k[m][C_] != m) {
                    if (nclan >= 4 * MAXT || sp >= 4 * MAXT) {
                        BAD(x, "a cycle of chiefs");
                        return;
                    }
                    clan[nclan++] = m;
                    stack[sp++] = m;
                }
        }
        for (int i = 0; i < nclan; i++) {
            V *row = w->k[clan[i]];
            V ver = row[V_];
            memset(row, 0, sizeof(V) * 8);
            row[C_] = RMGR;
            row[V_] = ver;
        }
    }
    V *row = w->k[n];
    V ver = row[V_];
    memset(row, 0, sizeof(V) * 8);
    row[C_] = chief;
    row[V_] = ver;
    w->own[n] = x->c->ts_me;
}

static V allocate(Ctx *x, St *w, V caller, int chief) { /* packed id or -1 */
    int i;
    for (i = 0; i < x->c->nrec; i++)
        if (w->rec[i][2] == ST_FREE) break;
    if (i == x->c->nrec) return -1;
    V *rec = w->rec[i];
    V n = x->c->ts_first + i;
    V v = rec[0];
    V nv = v - v % VERSION_LOW + (v + 1) % VERSION_LOW;
    rec[0] = nv;
    rec[1] = caller;
    rec[2] = chief ? ST_CHIEF : ST_ALLOCATED;
    if (chief) {
        if (!grants(x, w, n)) return -1;
        set_task(x, w, n, caller);
    }
    return tid(x, n, nv);
}

static int create(Ctx *x, St *w, V caller, V task, V eip, V pager, V prio, int named) {
    V n = task & 2047;
    V *rec = record(x, w, n);
    if (!rec || rec[2] == ST_FREE || rec[1] != caller || tid(x, n, rec[0]) != task) return 0;
    if (rec[3]) return 0;
    V me = x->c->ts_me;
    if (!rmgr_task_new(x, w, me, task, MAX_MCP, eip, pager)) return 0;
    if (named) set_task_id(x, w, me, task);
    set_prio(x, w, me, task, prio);
    return 1;
}

static int free_(Ctx *x, St *w, V caller, V n, int back) {
    V *rec = record(x, w, n);
    if (!rec || rec[1] != caller || rec[2] == ST_FREE) return 0;
    if (x->c->fix_free && rec[2] == ST_CHIEF && !back) return 0;
    rec[1] = NO_OWNER;
    rec[2] = ST_FREE;
    return 1;
}

static int free2(Ctx *x, St *w, V caller, V n) {
    int back = task_new_nil(x, w, x->c->ts_me, n, RMGR);
    return free_(x, w, caller, n, back);
}

static int kill_(Ctx *x, St *w, V caller, V task, int free) {
    V n = task & 2047;
    V *rec = record(x, w, n);
    if (!rec || rec[2] == ST_FREE || rec[3]) return 0;
    V owner = rec[1];
    if (!(caller == owner || caller == NO_OWNER || caller == n || owner == NO_OWNER)) return 0;
    if (grants(x, w, n))
        set_task(x, w, n, RMGR);
    else if (!(x->c->fix_kill && task_new_nil(x, w, x->c->ts_me, n, RMGR)))
        return 0;
    if (rec[2] == ST_CHIEF) rec[2] = ST_ALLOCATED;
    if (free) {
        rec[1] = NO_OWNER;
        rec[2] = ST_FREE;
    }
    return 1;
}

static void reclaim(Ctx *x, St *w, V owner) {
    int first = x->c->ts_first, count = x->c->nrec;
    V so[4 * MAXT];
    int ss[4 * MAXT], sp = 0;
    so[sp] = owner;
    ss[sp++] = 0;
    while (sp) {
        V own = so[sp - 1];
        int start = ss[sp - 1], nxt = -1;
        for (int i = start; i < count; i++)
            if (w->rec[i][2] != ST_FREE && w->rec[i][1] == own) {
                nxt = i;
                break;
            }
        if (nxt < 0) {
            sp--;
            continue;
        }
        ss[sp - 1] = nxt + 1;
        if (kill_(x, w, own, tid(x, first + nxt, w->rec[nxt][0]), 1)) {
            if (sp >= 4 * MAXT) {
                BAD(x, "a reclaim deeper than the task numbers");
                return;
            }
            so[sp] = first + nxt;
            ss[sp++] = 0;
        }
    }
}

static int kill_recursive(Ctx *x, St *w, V caller, V task) {
    if (!kill_(x, w, caller, task, 1)) return 0;
    reclaim(x, w, task & 2047);
    return 1;
}

static int ts_exit(Ctx *x, St *w, V caller) {
    V me = tid(x, caller, w->k[caller][V_]);
    V *rec = record(x, w, caller);
    if (rec && rec[3]) return 0;
    return kill_recursive(x, w, caller, me);
}

static void exit_event(Ctx *x, St *w, V dead) {
    if (free_client(x, w, x->c->ts_me, dead)) reclaim(x, w, dead);
}

/* -- freeze: servers and a task server that are gone leave the state ------------------ */

static void drop_dead(Ctx *x, St *w) {
    int j = 0;
    for (int i = 0; i < w->ns; i++) {
        V *row = w->k[w->lx[i].me];
        if (row[A_] && row[E_] == EIP_L4 && row[V_] == 1) {
            if (i != j) w->lx[j] = w->lx[i];
            j++;
        }
    }
    w->ns = j;
    if (w->has_ts) {
        V *row = w->k[x->c->ts_me];
        if (!(row[A_] && row[E_] == EIP_TS && row[V_] == 1)) w->has_ts = 0;
    }
}

/* -- an L4Linux server's calls ------------------------------------------------------- */

static int slot_index(Srv *s, V t) {
    for (int i = 0; i < s->nslots; i++)
        if (s->slots[i] == t) return i;
    return -1;
}
static int in_cache(Srv *s, V t) {
    for (int i = 0; i < s->ncache; i++)
        if (s->cache[i] == t) return 1;
    return 0;
}

static V acquire(Ctx *x, St *w, Srv *s) { /* -1: none */
    if (x->c->strategy == CHIEF_CACHE && s->ncache) {
        V fr = s->cache[0], given = fr;
        if (x->c->fix_cache) {
            V nv = ((fr >> 18) + 1) % VERSIONS;
            given = tid(x, fr & 0x3FFFF, nv);
        }
        int i = slot_index(s, fr);
        if (i < 0) {
            BAD(x, "a cached id in no slot");
            return -1;
        }
        s->slots[i] = given;
        memmove(s->cache, s->cache + 1, sizeof(V) * (size_t)(s->ncache - 1));
        s->ncache--;
        return given;
    }
    if (!ts_alive(x, w)) return -1;
    return allocate(x, w, s->me, x->c->strategy != CLASSIC);
}

static int start(Ctx *x, St *w, Srv *s, V task, V id) {
    if (x->c->strategy == CLASSIC) {
        if (!ts_alive(x, w)) return 0;
        if (create(x, w, s->me, task, EIP_PROC, id, PRIO_USER, 1)) return 1;
        free_(x, w, s->me, task & 2047, 0);
        return 0;
    }
    if (!task_new(x, w, s->me, task, MAX_MCP, id, EIP_PROC, 0)) return 0;
    if (schedule(x, w, s->me, task, -1) >= 0) schedule(x, w, s->me, task, PRIO_SERVER);
    return 1;
}

static void stop(Ctx *x, St *w, Srv *s, V task) {
    V n = task & 2047;
    if (x->c->strategy == CLASSIC) {
        if (ts_alive(x, w) && kill_(x, w, s->me, task, 0)) free_(x, w, s->me, n, 0);
        return;
    }
    if (!task_new_nil(x, w, s->me, n, s->me)) return;
    if (x->c->strategy == CHIEF_CACHE && slot_index(s, task) >= 0 && !in_cache(s, task)) {
        V cache[MAXC];
        int nc = 0;
        for (int i = 0; i < s->nslots; i++)
            if (in_cache(s, s->slots[i]) || s->slots[i] == task) cache[nc++] = s->slots[i];
        memcpy(s->cache, cache, sizeof(V) * (size_t)nc);
        s->ncache = nc;
        return;
    }
    V heir = w->has_ts ? x->c->ts_me : 0;
    if (task_new_nil(x, w, s->me, n, heir) && ts_alive(x, w)) free2(x, w, s->me, n);
}

static void spawn(Ctx *x, St *w, Srv *s, V parent, V id) {
    V got = acquire(x, w, s);
    if (got < 0 || !start(x, w, s, got, id)) return;
    if (s->np >= MAXP) {
        BAD(x, "more processes than the core holds");
        return;
    }
    Proc *p = &s->p[s->np++];
    p->pid = s->next_pid;
    p->task = got;
    p->parent = parent;
    p->zombie = 0;
    p->status = 0;
    s->next_pid += 1;
}

static void end(Ctx *x, St *w, Srv *s, int i, V status) {
    V pid = s->p[i].pid, task = s->p[i].task;
    stop(x, w, s, task);
    int known = 0;
    for (int j = 0; j < s->nret; j++)
        if (s->ret[j] == task) known = 1;
    if (!known) {
        if (s->nret >= MAXR) {
            BAD(x, "more retired ids than the core holds");
            return;
        }
        s->ret[s->nret++] = task;
    }
    s->p[i].zombie = 1;
    s->p[i].status = status;
    for (int j = 0; j < s->np; j++)
        if (s->p[j].parent == pid) s->p[j].parent = INIT_PID;
}

/* kind 0 Fork, 1 Exit(0), 2 Kill(arg), 3 Wait(-1), from process task `sender` */
static void call(Ctx *x, const St *in, St *w, int si, int kind, V sender, V arg) {
    *w = *in;
    Srv *s = &w->lx[si];
    V id = tid(x, s->me, w->k[s->me][V_]);
    int me = -1;
    for (int i = 0; i < s->np; i++)
        if (!s->p[i].zombie && s->p[i].task == sender) {
            me = i;
            break;
        }
    if (me < 0) {
        BAD(x, "a call from no running process");
        return;
    }
    if (kind == 0) {
        spawn(x, w, s, s->p[me].pid, id);
    } else if (kind == 1) {
        end(x, w, s, me, 0);
    } else if (kind == 2) {
        for (int i = 0; i < s->np; i++)
            if (s->p[i].pid == arg) {
                if (!s->p[i].zombie) end(x, w, s, i, KILLED);
                break;
            }
    } else {
        V pid = s->p[me].pid;
        for (int i = 0; i < s->np; i++)
            if (s->p[i].parent == pid && s->p[i].zombie) {
                memmove(&s->p[i], &s->p[i + 1], sizeof(Proc) * (size_t)(s->np - i - 1));
                s->np--;
                break;
            }
    }
    drop_dead(x, w);
}

static void shutdown_(Ctx *x, const St *in, St *w, int si) {
    *w = *in;
    V me = w->lx[si].me;
    if (!ts_alive(x, w) || (me >= x->c->ts_first && me < x->c->ts_first + x->c->nrec)) {
        BAD(x, "a shutdown the task server does not answer with ENOTFOUND");
        return;
    }
    exit_event(x, w, me);
    drop_dead(x, w);
}

/* -- the state invariants (explore_checks.py; bit i = invariants.STATE_INVARIANTS[i]) -- */

static const char *const INVARIANTS[] = {
    "every_task_has_exactly_one_chief",
    "every_task_is_in_exactly_one_place",
    "the_owner_of_an_allocate_chief_task_is_its_chief",
    "cached_tasks_are_inactive_and_the_cachers",
    "reused_tasks_get_a_new_version",
    "exit_reclaims_everything",
};
#define NINV 6

static int one_chief(Ctx *x, St *s) {
    int T = x->c->T;
    if (s->k[0][C_] != 0) return 0;
    for (int n = 1; n < T; n++) {
        V chief = s->k[n][C_];
        if (chief < 0 || chief >= T || chief == n) return 0;
        uint64_t seen = bit(n);
        while (chief != 0) {
            if (inmask(seen, chief)) return 0;
            seen |= bit(chief);
            chief = s->k[chief][C_];
        }
    }
    return 1;
}

enum { PL_CONFLICT = 0, PL_FREE = 1, PL_RESERVED = 2, PL_OWNER = 3, PL_CACHER = 4 };

static int cachers(St *s, V n, V *who) { /* how many servers cache number n */
    int count = 0;
    for (int i = 0; i < s->ns; i++) {
        Srv *v = &s->lx[i];
        for (int j = 0; j < v->ncache; j++)
            if ((v->cache[j] & 2047) == n) {
                *who = v->me;
                count++;
                break;
            }
    }
    return count;
}

static int place(Ctx *x, St *s, V n, V *who) {
    V owner = s->own[n];
    V *rec = record(x, s, n);
    int ts = x->c->ts_me;
    if (rec && rec[1] != NO_OWNER && owner != ts) return PL_CONFLICT;
    int kind;
    V base;
    if (owner == FREE_) {
        kind = PL_FREE;
        base = 0;
    } else if (s->has_ts && owner == ts && n != ts) {
        if (!rec || rec[1] == NO_OWNER) {
            kind = PL_RESERVED;
            base = 0;
        } else {
            kind = PL_OWNER;
            base = rec[1];
        }
    } else {
        kind = PL_OWNER;
        base = owner;
    }
    V cacher = 0;
    int count = cachers(s, n, &cacher);
    if (count > 1) return PL_CONFLICT;
    if (count) {
        if (kind == PL_OWNER && base == cacher) {
            *who = cacher;
            return PL_CACHER;
        }
        return PL_CONFLICT;
    }
    *who = base;
    return kind;
}

static int one_place(Ctx *x, St *s) {
    int T = x->c->T;
    V running[MAXT];
    uint64_t isrun = 0;
    for (int i = 0; i < s->ns; i++) {
        Srv *v = &s->lx[i];
        for (int j = 0; j < v->np; j++) {
            if (v->p[j].zombie) continue;
            V n = v->p[j].task & 2047;
            if (inmask(isrun, n)) return 0;
            if (n >= T) {
                BAD(x, "a process beyond the task numbers");
                return 1;
            }
            isrun |= bit(n);
            running[n] = v->me;
        }
    }
    for (int n = 5; n < T; n++) {
        V who = 0;
        int kind = place(x, s, n, &who);
        if (kind == PL_CONFLICT) return 0;
        if (kind == PL_FREE && (s->k[n][A_] || s->k[n][C_] != RMGR)) return 0;
        V *rec = record(x, s, n);
        if (rec && rec[2] == 0 && (s->k[n][C_] != RMGR || rec[3])) return 0;
        if (inmask(isrun, n) && !(kind == PL_OWNER && who == running[n])) return 0;
    }
    return 1;
}

static int owner_is_chief(Ctx *x, St *s) {
    if (s->has_ts)
        for (int i = 0; i < x->c->nrec; i++) {
            V *rec = s->rec[i];
            if (rec[2] != 2 || rec[1] == NO_OWNER) continue;
            V chief = s->k[x->c->ts_first + i][C_];
            if (chief != rec[1] && chief != x->c->ts_me) return 0;
        }
    for (int n = 0; n < x->c->T; n++)
        if (inmask(s->handed, n) && s->k[n][C_] != s->own[n] && s->k[n][C_] != RMGR) return 0;
    return 1;
}

static int cached_ok(Ctx *x, St *s) {
    for (int i = 0; i < s->ns; i++) {
        Srv *v = &s->lx[i];
        if (v->ncache > x->c->cache_cap) return 0;
        for (int j = 0; j < v->ncache; j++) {
            V n = v->cache[j] & 2047, who = 0;
            if (s->k[n][A_] || s->k[n][C_] != v->me) return 0;
            if (place(x, s, n, &who) != PL_CACHER || who != v->me) return 0;
            V *rec = record(x, s, n);
            if (rec && rec[2] != 2) return 0;
        }
    }
    return 1;
}

static int new_version(Ctx *x, St *s) {
    for (int i = 0; i < s->ns; i++) {
        Srv *v = &s->lx[i];
        for (int j = 0; j < v->np; j++) {
            if (v->p[j].zombie) continue;
            V task = v->p[j].task;
            for (int r = 0; r < v->nret; r++)
                if (v->ret[r] == task) return 0;
            V n = task & 2047;
            if (!s->k[n][A_] || tid(x, n, s->k[n][V_]) != task) return 0;
        }
    }
    return 1;
}

static int reclaims(Ctx *x, St *s) {
    int T = x->c->T;
    for (int n = 5; n < T; n++) {
        V o = s->own[n];
        if (o != FREE_ && (o < 0 || o >= T || !s->k[o][A_])) return 0;
    }
    if (s->has_ts)
        for (int i = 0; i < x->c->nrec; i++) {
            V o = s->rec[i][1];
            if (o != NO_OWNER && (o < 0 || o >= T || !s->k[o][A_])) return 0;
        }
    for (int i = 0; i < s->ns; i++) {
        Srv *v = &s->lx[i];
        if (!s->k[v->me][A_] && (v->ncache || v->np)) return 0;
    }
    return 1;
}

static int holds(Ctx *x, St *s) {
    unsigned m = x->c->inv;
    if ((m & 1) && !one_chief(x, s)) return 0;
    if ((m & 2) && !one_place(x, s)) return 0;
    if ((m & 4) && !owner_is_chief(x, s)) return 0;
    if ((m & 8) && !cached_ok(x, s)) return 0;
    if ((m & 16) && !new_version(x, s)) return 0;
    if ((m & 32) && !reclaims(x, s)) return 0;
    return 1;
}

/* -- the canonical form and its fingerprint ------------------------------------------ */

typedef struct {
    int n;
    V v[MAXV], pl[MAXV];
} Pl;

static void pl_add(Ctx *x, Pl *p, V v) {
    for (int i = 0; i < p->n; i++)
        if (p->v[i] == v) return;
    if (p->n >= MAXV) {
        BAD(x, "more versions of one number than the core holds");
        return;
    }
    p->v[p->n++] = v;
}

static int pl_of(const Pl *p, V v, V *out) {
    for (int i = 0; i < p->n; i++)
        if (p->v[i] == v) {
            *out = p->pl[i];
            return 1;
        }
    return 0;
}

static void places(Ctx *x, St *s, Pl *live) {
    const Cfg *c = x->c;
    int T = c->T;
    for (int n = 0; n < T; n++) live[n].n = 0;
    for (int n = 5; n < T; n++) {
        if (s->k[n][A_] || c->inactive) pl_add(x, &live[n], s->k[n][V_]);
        if (c->rmgr_v) pl_add(x, &live[n], s->ver[n]);
    }
    if (s->has_ts)
        for (int i = 0; i < c->nrec; i++) pl_add(x, &live[c->ts_first + i], s->rec[i][0]);
#define LIVE(t)                                                       \
    do {                                                              \
        V n_ = (t) & 2047;                                            \
        if (n_ >= T) {                                                \
            BAD(x, "an id beyond the task numbers");                  \
            return;                                                   \
        }                                                             \
        pl_add(x, &live[n_], (t) >> 18);                              \
    } while (0)
    for (int i = 0; i < s->ns; i++) {
        Srv *v = &s->lx[i];
        for (int j = 0; j < v->nslots; j++) LIVE(v->slots[j]);
        for (int j = 0; j < v->ncache; j++) LIVE(v->cache[j]);
        for (int j = 0; j < v->np; j++)
            if (!v->p[j].zombie) LIVE(v->p[j].task);
    }
    V extra_n[MAXS * MAXR], extra_v[MAXS * MAXR];
    int nextra = 0;
    for (int i = 0; i < s->ns; i++) {
        Srv *v = &s->lx[i];
        for (int j = 0; j < v->nret; j++) {
            V t = v->ret[j], n = t & 2047, ver = t >> 18;
            if (n >= T) continue;
            Pl *p = &live[n];
            int known = 0, near = 0;
            for (int q = 0; q < p->n; q++) {
                if (p->v[q] == ver) known = 1;
                V d = ver - p->v[q];
                if (d >= 0 && d <= c->window) near = 1;
            }
            if (!known && near) {
                extra_n[nextra] = n;
                extra_v[nextra++] = ver;
            }
        }
    }
    for (int i = 0; i < nextra; i++) pl_add(x, &live[extra_n[i]], extra_v[i]);
    V gap = c->window + 1;
    for (int n = 0; n < T; n++) {
        Pl *p = &live[n];
        for (int i = 1; i < p->n; i++) { /* insertion sort, few values */
            V v = p->v[i];
            int j = i - 1;
            while (j >= 0 && p->v[j] > v) {
                p->v[j + 1] = p->v[j];
                j--;
            }
            p->v[j + 1] = v;
        }
        V at = 0;
        for (int i = 0; i < p->n; i++) {
            if (i) {
                V d = p->v[i] - p->v[i - 1];
                at += d < gap ? d : gap;
            }
            p->pl[i] = at;
        }
    }
}

static uint64_t free_pool(Ctx *x, St *s) {
    const Cfg *c = x->c;
    if (!c->symmetry) return 0;
    uint64_t held = 0, out = 0;
    for (int i = 0; i < s->ns; i++)
        for (int j = 0; j < s->lx[i].ncache; j++) held |= bit(s->lx[i].cache[j] & 2047);
    for (int n = c->pool_start > 5 ? c->pool_start : 5; n < c->T; n++) {
        V o = s->own[n];
        if (inmask(held, n) || s->k[n][A_]) continue;
        if (!(o == -1 || (s->has_ts && o == c->ts_me))) continue;
        if (s->has_ts) {
            int i = n - c->ts_first;
            if (i >= 0 && i < c->nrec && (s->rec[i][2] || s->rec[i][1] != -1)) continue;
        }
        out |= bit(n);
    }
    return out;
}

typedef struct {
    V *a;
    int n;
} Buf;

#define PUT(b, val)                                \
    do {                                           \
        if ((b)->n >= MAXCODE) {                   \
            BAD(x, "a canonical form too long");   \
            return;                                \
        }                                          \
        (b)->a[(b)->n++] = (val);                  \
    } while (0)

static inline V ren(const V *map, int T, V v) { return (v >= 0 && v < T) ? map[v] : v; }

static void put_rid(Ctx *x, Buf *b, const Pl *live, const V *map, V p) {
    int T = x->c->T;
    V t = p & 2047, v = p >> 18, pl = 0;
    if (t >= 5 && t < T && pl_of(&live[t], v, &pl)) {
        PUT(b, 2);
        PUT(b, ren(map, T, t));
        PUT(b, pl);
    } else {
        PUT(b, 3);
        PUT(b, ren(map, T, t));
        PUT(b, (p >> 11) & 127);
        PUT(b, v);
    }
}

/* A task's row (explore_fast._tables, renamed as _renamed_row does). */
static void put_row(Ctx *x, Buf *b, St *s, const Pl *live, const V *map, int n) {
    const Cfg *c = x->c;
    int T = c->T;
    V *e = s->k[n], pl = 0;
    if (e[A_] || c->inactive) {
        if (!pl_of(&live[n], e[V_], &pl)) BAD(x, "a kernel version with no place");
        PUT(b, pl);
    } else {
        PUT(b, -1);
    }
    if (c->rmgr_v) {
        if (!pl_of(&live[n], s->ver[n], &pl)) BAD(x, "an RMGR version with no place");
        PUT(b, pl);
    } else {
        PUT(b, -1);
    }
    PUT(b, ren(map, T, e[C_]));
    PUT(b, e[A_]);
    PUT(b, e[M_]);
    PUT(b, e[E_]);
    PUT(b, e[S_]);
    if (e[P_])
        put_rid(x, b, live, map, e[P_]);
    else
        PUT(b, 0);
    PUT(b, ren(map, T, s->own[n]));
    PUT(b, inmask(s->handed, n));
    V *rec = record(x, s, n);
    if (rec) {
        if (!pl_of(&live[n], rec[0], &pl)) BAD(x, "a record version with no place");
        PUT(b, 1);
        PUT(b, ren(map, T, rec[1]));
        PUT(b, rec[2]);
        PUT(b, pl);
    } else {
        PUT(b, 0);
    }
    /* retired ids of n kept by each server: (server, sorted places), by renamed server */
    int order[MAXS], no = 0;
    for (int i = 0; i < s->ns; i++) {
        Srv *v = &s->lx[i];
        int any = 0;
        for (int j = 0; j < v->nret && !any; j++)
            if ((v->ret[j] & 2047) == n && pl_of(&live[n], v->ret[j] >> 18, &pl)) any = 1;
        if (!any) continue;
        V key = ren(map, T, v->me);
        int j = no++;
        while (j > 0 && ren(map, T, s->lx[order[j - 1]].me) > key) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    PUT(b, no);
    for (int q = 0; q < no; q++) {
        Srv *v = &s->lx[order[q]];
        V ps[MAXR];
        int np = 0;
        for (int j = 0; j < v->nret; j++)
            if ((v->ret[j] & 2047) == n && pl_of(&live[n], v->ret[j] >> 18, &pl)) {
                int at = np++;
                while (at > 0 && ps[at - 1] > pl) {
                    ps[at] = ps[at - 1];
                    at--;
                }
                ps[at] = pl;
            }
        PUT(b, ren(map, T, v->me));
        PUT(b, np);
        for (int j = 0; j < np; j++) PUT(b, ps[j]);
    }
}

/* A server's processes, cache and slots (explore_fast._tables' parts). */
static void put_part(Ctx *x, Buf *b, const Pl *live, const V *map, Srv *v) {
    int T = x->c->T;
    PUT(b, ren(map, T, v->me));
    PUT(b, v->np);
    for (int j = 0; j < v->np; j++) {
        Proc *p = &v->p[j];
        V rank = -1;
        if (p->parent == 0) rank = 0;
        for (int q = 0; q < v->np; q++)
            if (v->p[q].pid == p->parent) {
                rank = q + 1;
                break;
            }
        if (rank < 0) BAD(x, "a parent that is no process");
        PUT(b, rank);
        PUT(b, p->zombie);
        PUT(b, p->status);
        if (p->zombie)
            PUT(b, 0);
        else
            put_rid(x, b, live, map, p->task);
    }
    PUT(b, v->ncache);
    for (int j = 0; j < v->ncache; j++) put_rid(x, b, live, map, v->cache[j]);
    PUT(b, v->nslots);
    for (int j = 0; j < v->nslots; j++) put_rid(x, b, live, map, v->slots[j]);
}

static int cmp_words(const V *a, int na, const V *b, int nb) {
    int n = na < nb ? na : nb;
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return na < nb ? -1 : na > nb ? 1 : 0;
}

typedef struct {
    V one[MAXCODE], two[MAXCODE], tmp[MAXCODE];
} Scratch;

static void code_for(Ctx *x, St *s, const Pl *live, uint64_t free, const V *map, Buf *b,
                     V *tmp) {
    const Cfg *c = x->c;
    int T = c->T;
    /* the numbers not in the free pool, by their new number */
    V inv[MAXT];
    for (int n = 0; n < T; n++) inv[map[n]] = n;
    for (int t = 5; t < T; t++) {
        int n = inv[t];
        if (inmask(free, n)) continue;
        PUT(b, t);
        put_row(x, b, s, live, map, n);
    }
    /* the free pool's rows, sorted */
    int nfree = 0, starts[MAXT + 1];
    Buf tb = {tmp, 0};
    for (int n = 5; n < T; n++)
        if (inmask(free, n)) {
            starts[nfree++] = tb.n;
            put_row(x, &tb, s, live, map, n);
            if (x->bad) return;
        }
    starts[nfree] = tb.n;
    int order[MAXT];
    for (int i = 0; i < nfree; i++) {
        int j = i;
        while (j > 0 && cmp_words(tmp + starts[order[j - 1]],
                                  starts[order[j - 1] + 1] - starts[order[j - 1]],
                                  tmp + starts[i], starts[i + 1] - starts[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    PUT(b, nfree);
    for (int i = 0; i < nfree; i++)
        for (int w = starts[order[i]]; w < starts[order[i] + 1]; w++) PUT(b, tmp[w]);
    /* the servers, by their new number */
    int so[MAXS];
    for (int i = 0; i < s->ns; i++) {
        V key = ren(map, T, s->lx[i].me);
        int j = i;
        while (j > 0 && ren(map, T, s->lx[so[j - 1]].me) > key) {
            so[j] = so[j - 1];
            j--;
        }
        so[j] = i;
    }
    PUT(b, s->ns);
    for (int i = 0; i < s->ns; i++) put_part(x, b, live, map, &s->lx[so[i]]);
}

static uint64_t hash_words(const V *a, int n) {
    const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full;
    uint64_t h = 0x27D4EB2F165667C5ull ^ ((uint64_t)n * P1);
    int i = 0;
    for (; i + 1 < n; i += 2) {
        uint64_t lane = (uint64_t)(uint32_t)a[i] | (uint64_t)(uint32_t)a[i + 1] << 32;
        lane *= P2;
        lane = (lane << 31) | (lane >> 33);
        lane *= P1;
        h ^= lane;
        h = ((h << 27) | (h >> 37)) * P1 + 0x85EBCA77C2B2AE63ull;
    }
    if (i < n) {
        h ^= (uint64_t)(uint32_t)a[i] * P1;
        h = ((h << 23) | (h >> 41)) * P2 + 0x165667B19E3779F9ull;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= 0x165667B19E3779F9ull;
    h ^= h >> 32;
    return h ? h : 1;
}

static uint64_t fingerprint(Ctx *x, St *s, Scratch *sc) {
    Pl live[MAXT];
    places(x, s, live);
    if (x->bad) return 1;
    uint64_t free = free_pool(x, s);
    const Cfg *c = x->c;
    Buf best = {sc->one, -1}, b = {sc->two, 0};
    for (int p = 0; p < c->nperm; p++) {
        b.n = 0;
        code_for(x, s, live, free, c->map[p], &b, sc->tmp);
        if (x->bad) return 1;
        if (best.n < 0 || cmp_words(b.a, b.n, best.a, best.n) < 0) {
            Buf t = best; /* the smaller code is kept; the other buffer is reused */
            best = b;
            b = t;
        }
    }
    return hash_words(best.a, best.n);
}

/* -- flat states (explore_core.flatten's layout) and the frontier's varints ----------- */

typedef struct {
    V *a;
    int n, cap;
} Vec;

static int flat_put(Vec *f, V v) {
    if (f->n >= f->cap) return 0;
    f->a[f->n++] = v;
    return 1;
}

static int flatten(const Cfg *c, const St *s, Vec *f) {
    int ok = 1, T = c->T;
    ok &= flat_put(f, s->ns);
    ok &= flat_put(f, s->has_ts);
    ok &= flat_put(f, s->exits);
    ok &= flat_put(f, (V)s->handed);
    ok &= flat_put(f, (V)s->reset);
    for (int n = 0; n < T; n++)
        for (int i = 0; i < 8; i++) ok &= flat_put(f, s->k[n][i]);
    for (int n = 0; n < T; n++) ok &= flat_put(f, s->own[n]);
    for (int n = 0; n < T; n++) ok &= flat_put(f, s->ver[n]);
    for (int n = 0; n < T; n++) ok &= flat_put(f, s->used[n]);
    if (s->has_ts)
        for (int i = 0; i < c->nrec; i++)
            for (int j = 0; j < 4; j++) ok &= flat_put(f, s->rec[i][j]);
    for (int i = 0; i < s->ns; i++) {
        const Srv *v = &s->lx[i];
        ok &= flat_put(f, v->me);
        ok &= flat_put(f, v->next_pid);
        ok &= flat_put(f, v->np);
        ok &= flat_put(f, v->nslots);
        ok &= flat_put(f, v->ncache);
        ok &= flat_put(f, v->nret);
        for (int j = 0; j < v->np; j++) {
            ok &= flat_put(f, v->p[j].pid);
            ok &= flat_put(f, v->p[j].task);
            ok &= flat_put(f, v->p[j].parent);
            ok &= flat_put(f, v->p[j].zombie);
            ok &= flat_put(f, v->p[j].status);
        }
        for (int j = 0; j < v->nslots; j++) ok &= flat_put(f, v->slots[j]);
        for (int j = 0; j < v->ncache; j++) ok &= flat_put(f, v->cache[j]);
        for (int j = 0; j < v->nret; j++) ok &= flat_put(f, v->ret[j]);
    }
    return ok;
}

/* Reads a flat state; 0 if it does not fit the core (then the Python search runs). */
static int unflatten(const Cfg *c, const V *a, int len, St *s) {
    int at = 0, T = c->T;
#define GET(dst)                     \
    do {                             \
        if (at >= len) return 0;     \
        (dst) = a[at++];             \
    } while (0)
    memset(s, 0, sizeof *s);
    V ns, has_ts, handed, reset;
    GET(ns);
    GET(has_ts);
    GET(s->exits);
    GET(handed);
    GET(reset);
    if (ns < 0 || ns > MAXS) return 0;
    s->ns = ns;
    s->has_ts = has_ts != 0;
    s->handed = (uint32_t)handed;
    s->reset = (uint32_t)reset;
    for (int n = 0; n < T; n++)
        for (int i = 0; i < 8; i++) GET(s->k[n][i]);
    for (int n = 0; n < T; n++) GET(s->own[n]);
    for (int n = 0; n < T; n++) GET(s->ver[n]);
    for (int n = 0; n < T; n++) GET(s->used[n]);
    if (s->has_ts)
        for (int i = 0; i < c->nrec; i++)
            for (int j = 0; j < 4; j++) GET(s->rec[i][j]);
    for (int i = 0; i < s->ns; i++) {
        Srv *v = &s->lx[i];
        V np, nslots, ncache, nret;
        GET(v->me);
        GET(v->next_pid);
        GET(np);
        GET(nslots);
        GET(ncache);
        GET(nret);
        if (np < 0 || np > MAXP || nslots < 0 || nslots > MAXC || ncache < 0 || ncache > MAXC ||
            nret < 0 || nret > MAXR || v->me < 0 || v->me >= T)
            return 0;
        v->np = np;
        v->nslots = nslots;
        v->ncache = ncache;
        v->nret = nret;
        for (int j = 0; j < np; j++) {
            GET(v->p[j].pid);
            GET(v->p[j].task);
            GET(v->p[j].parent);
            GET(v->p[j].zombie);
            GET(v->p[j].status);
        }
        for (int j = 0; j < nslots; j++) GET(v->slots[j]);
        for (int j = 0; j < ncache; j++) GET(v->cache[j]);
        for (int j = 0; j < nret; j++) GET(v->ret[j]);
    }
#undef GET
    return at == len;
}

typedef struct {
    unsigned char *a;
    size_t n, cap;
} Bytes;

static int bytes_reserve(Bytes *b, size_t more) {
    if (b->n + more <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + more) cap += cap / 2 + 1; /* 1.5x: less slack on big frontiers */
    unsigned char *a = realloc(b->a, cap);
    if (!a) return 0;
    b->a = a;
    b->cap = cap;
    return 1;
}

/* A flat state as bytes: its count, then tokens, each a varint: 2r means r + 1 values
 * equal to the reference's at their place (ref: a flat state the reader has too, or NULL
 * for none, i.e. zeros), 2z + 1 a value whose difference from the reference's is z
 * zigzagged.  States of a search differ from its start in few places, so most of a
 * frontier state is a few zero runs. */
static void put_u64(Bytes *b, uint64_t u) {
    while (u >= 0x80) {
        b->a[b->n++] = (unsigned char)(u | 0x80);
        u >>= 7;
    }
    b->a[b->n++] = (unsigned char)u;
}

static int put_varints(const Cfg *c, Bytes *b, const St *s, V *flat, const Vec *ref) {
    Vec f = {flat, 0, MAXCODE};
    if (!flatten(c, s, &f)) return 0;
    if (!bytes_reserve(b, 10 * (size_t)(f.n + 1))) return 0;
    put_u64(b, (uint64_t)f.n);
    for (int i = 0; i < f.n;) {
        int64_t d = (int64_t)f.a[i] - (ref && i < ref->n ? ref->a[i] : 0);
        if (d == 0) {
            int r = 1;
            while (i + r < f.n && f.a[i + r] == (ref && i + r < ref->n ? ref->a[i + r] : 0)) r++;
            put_u64(b, 2 * (uint64_t)(r - 1));
            i += r;
        } else {
            uint64_t z = ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
            put_u64(b, 2 * z + 1);
            i++;
        }
    }
    return 1;
}

static int get_u64(const unsigned char *p, size_t len, size_t *at, uint64_t *out) {
    uint64_t u = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*at >= len) return 0;
        unsigned char byte = p[(*at)++];
        u |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *out = u;
            return 1;
        }
    }
    return 0;
}

/* the state of put_varints' bytes, reading at most len bytes; 0 if they are not one */
static size_t get_varints(const Cfg *c, const unsigned char *p, size_t len, St *s, V *flat,
                          const Vec *ref) {
    size_t at = 0;
    uint64_t count, t;
    if (!get_u64(p, len, &at, &count) || count > MAXCODE) return 0;
    for (uint64_t i = 0; i < count;) {
        if (!get_u64(p, len, &at, &t)) return 0;
        if (t & 1) {
            uint64_t z = t >> 1;
            int64_t d = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
            int64_t v = d + (ref && i < (uint64_t)ref->n ? ref->a[i] : 0);
            if (v < INT32_MIN || v > INT32_MAX) return 0;
            flat[i++] = (V)v;
        } else {
            uint64_t r = (t >> 1) + 1;
            if (r > count - i) return 0;
            for (uint64_t q = 0; q < r; q++, i++)
                flat[i] = ref && i < (uint64_t)ref->n ? ref->a[i] : 0;
        }
    }
    if (!unflatten(c, flat, (int)count, s)) return 0;
    return at;
}

/* one frontier entry: 8 bytes of fingerprint, then the state against the start state */
static int push_state(const Cfg *c, Bytes *b, const St *s, uint64_t fp, V *flat,
                      const Vec *ref) {
    if (!bytes_reserve(b, 8)) return 0;
    memcpy(b->a + b->n, &fp, 8);
    b->n += 8;
    return put_varints(c, b, s, flat, ref);
}

static size_t pop_state(const Cfg *c, const unsigned char *p, St *s, uint64_t *fp, V *flat,
                        const Vec *ref) {
    memcpy(fp, p, 8);
    size_t used = get_varints(c, p + 8, (size_t)-1 / 2, s, flat, ref);
    return used ? used + 8 : 0;
}

/* -- the visited set: fingerprint -> parent's fingerprint and move index -------------- */

#define ROOT 0xFFFFFFFFu

typedef struct {
    uint64_t *key, *up;
    uint32_t *index;
    size_t cap, n;
} Seen;

static int seen_init(Seen *t, size_t cap) {
    t->cap = cap;
    t->n = 0;
    t->key = calloc(cap, sizeof(uint64_t));
    t->up = malloc(cap * sizeof(uint64_t));
    t->index = malloc(cap * sizeof(uint32_t));
    return t->key && t->up && t->index;
}

static void seen_free(Seen *t) {
    free(t->key);
    free(t->up);
    free(t->index);
}

static size_t seen_slot(const Seen *t, uint64_t fp) {
    size_t mask = t->cap - 1, i = (size_t)(fp * 0x9E3779B97F4A7C15ull >> 17) & mask;
    while (t->key[i] && t->key[i] != fp) i = (i + 1) & mask;
    return i;
}

static int seen_grow(Seen *t) {
    Seen u;
    if (!seen_init(&u, t->cap * 2)) {
        seen_free(&u);
        return 0;
    }
    for (size_t i = 0; i < t->cap; i++)
        if (t->key[i]) {
            size_t j = seen_slot(&u, t->key[i]);
            u.key[j] = t->key[i];
            u.up[j] = t->up[i];
            u.index[j] = t->index[i];
        }
    u.n = t->n;
    seen_free(t);
    *t = u;
    return 1;
}

/* 1 added, 0 known already, -1 out of memory */
static int seen_add(Seen *t, uint64_t fp, uint64_t up, uint32_t index) {
    size_t i = seen_slot(t, fp);
    if (t->key[i]) return 0;
    t->key[i] = fp;
    t->up[i] = up;
    t->index[i] = index;
    t->n++;
    if (t->n * 10 > t->cap * 7 && !seen_grow(t)) return -1; /* at most 70% full */
    return 1;
}

static PyObject *path_to(const Seen *t, uint64_t fp) {
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    for (;;) {
        size_t i = seen_slot(t, fp);
        if (!t->key[i] || t->index[i] == ROOT) break;
        PyObject *v = PyLong_FromUnsignedLong(t->index[i]);
        if (!v || PyList_Append(out, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(v);
        fp = t->up[i];
    }
    if (PyList_Reverse(out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* -- moves ---------------------------------------------------------------------------- */

/* What a move's outcome does: the search's sink, or a list for successors(). */
typedef struct Sink Sink;
struct Sink {
    int (*emit)(Sink *, Ctx *, uint32_t index, St *after, int broken); /* after NULL: not built */
};

/* -- the scripted client's calls (explore_script.script_moves) --------------------- */

typedef struct {
    Ctx *x;
    const St *s;
    St *w;
    Sink *sink;
    uint32_t *i;
    Vec before; /* s flattened, once for all its moves */
    V *after;
} Script;

/* one move's outcome: the state after (None when it equals s) and whether it broke a
 * checked transition invariant */
static int script_emit(Script *sc, int broken) {
    if (sc->x->bad) return 1;
    Vec f = {sc->after, 0, MAXCODE};
    int same = flatten(sc->x->c, sc->w, &f) && f.n == sc->before.n &&
               !memcmp(f.a, sc->before.a, sizeof(V) * (size_t)f.n);
    return sc->sink->emit(sc->sink, sc->x, (*sc->i)++, same ? NULL : sc->w, broken);
}

static int inert(Script *sc) { return sc->sink->emit(sc->sink, sc->x, (*sc->i)++, NULL, 0); }

static int owner_rule(Script *sc, V me, V n, int self_ok) {
    V *rec = record(sc->x, (St *)sc->s, n);
    if (self_ok && rec && rec[1] == -1) return 1;
    return rec && (rec[1] == me || (self_ok && me == n));
}

enum { S_ALLOC, S_ALLOC_CHIEF, S_EXIT, S_CREATE, S_FREE, S_FREE2, S_KILL, S_KILL_REC,
       S_GET_TASK, S_FREE_TASK, S_RMGR_NEW, S_TASK_NEW, S_NIL_ME, S_NIL_BACK };

/* the call `what` about number n on a copy of s: whether it succeeded */
static int script_call(Script *sc, int what, V n) {
    Ctx *x = sc->x;
    const Cfg *c = x->c;
    St *w = sc->w;
    *w = *sc->s;
    V me = c->script, my_id = tid(x, me, sc->s->k[me][V_]);
    V v = n >= 0 ? sc->s->k[n][V_] : 0;
    V now = n >= 0 ? tid(x, n, v) : 0, next = n >= 0 ? tid(x, n, (v + 1) % VERSIONS) : 0;
    V *rec = n >= 0 ? record(x, w, n) : NULL;
    int ok = 0;
    switch (what) {
    case S_ALLOC: ok = allocate(x, w, me, 0) >= 0; break;
    case S_ALLOC_CHIEF: ok = allocate(x, w, me, 1) >= 0; break;
    case S_EXIT: ok = ts_exit(x, w, me); break;
    case S_CREATE: ok = create(x, w, me, now, 0, SIGMA0, 0, 0); break;
    case S_FREE: ok = free_(x, w, me, n, 0); break;
    case S_FREE2: ok = free2(x, w, me, n); break;
    case S_KILL: ok = kill_(x, w, me, now, 0); break;
    case S_KILL_REC: ok = kill_recursive(x, w, me, now); break;
    case S_GET_TASK: ok = get_task(x, w, my_id, n); break;
    case S_FREE_TASK: ok = free_task(x, w, my_id, n); break;
    case S_RMGR_NEW: ok = rmgr_task_new(x, w, me, next, MAX_MCP, 0, SIGMA0); break;
    case S_TASK_NEW: ok = task_new(x, w, me, next, MAX_MCP, my_id, 0, 0); break;
    case S_NIL_ME: ok = task_new_nil(x, w, me, n, me); break;
    case S_NIL_BACK:
        ok = task_new_nil(x, w, me, n, rec && rec[2] == ST_CHIEF ? c->ts_me : RMGR);
        break;
    }
    return ok;
}

/* a task-server call about number n (-1: none; nothing happens unless the task server is
 * alive); judged: invariant 8 judged on it */
static int ts_move(Script *sc, int what, V n, int judged, int self_ok) {
    const St *s = sc->s;
    if (!(s->has_ts && s->k[sc->x->c->ts_me][A_])) return inert(sc);
    int ok = script_call(sc, what, n);
    drop_dead(sc->x, sc->w);
    int broken = ok && judged && sc->x->c->check_owner &&
                 !owner_rule(sc, sc->x->c->script, n, self_ok);
    return script_emit(sc, broken);
}

/* a call straight to RMGR */
static int rmgr_move(Script *sc, int what, V n, int judged) {
    int ok = script_call(sc, what, n);
    drop_dead(sc->x, sc->w);
    V held = sc->s->own[n];
    int broken = judged && ok && sc->x->c->check_owner && held != -1 && held != sc->x->c->script;
    return script_emit(sc, broken);
}

/* l4_task_new by the script: invariant 2 judged on the kernel's table */
static int kernel_move(Script *sc, int what, V n) {
    int ok = script_call(sc, what, n);
    int broken = 0;
    if (sc->x->c->check_task_new) {
        if (!ok)
            broken = memcmp(sc->w->k, sc->s->k, sizeof(V) * 8 * (size_t)sc->x->c->T) != 0;
        else
            broken = sc->s->k[n][C_] != sc->x->c->script;
    }
    drop_dead(sc->x, sc->w);
    return script_emit(sc, broken);
}

static int script_moves(Ctx *x, const St *s, St *w, Sink *sink, uint32_t *i) {
    const Cfg *c = x->c;
    Script sc = {x, s, w, sink, i, {x->cmp, 0, MAXCODE}, x->cmp + MAXCODE};
    if (!flatten(c, s, &sc.before)) {
        BAD(x, "a state too large to compare");
        return 1;
    }
    V me = c->script;
    int alive = s->has_ts && s->k[c->ts_me][A_];
    int any_free = 0;
    if (s->has_ts)
        for (int r = 0; r < c->nrec; r++)
            if (s->rec[r][2] == ST_FREE) any_free = 1;
    if (alive && any_free ? ts_move(&sc, S_ALLOC, -1, 0, 0) : inert(&sc)) return 1;
    if (alive && any_free ? ts_move(&sc, S_ALLOC_CHIEF, -1, 0, 0) : inert(&sc)) return 1;
    if (alive && record(x, (St *)s, me) ? ts_move(&sc, S_EXIT, -1, 0, 0) : inert(&sc)) return 1;
    for (V n = c->pool_start; n < c->T; n++) {
        V v = s->k[n][V_];
        V *rec = record(x, (St *)s, n);
        int mine = alive && rec && rec[2] != ST_FREE && rec[1] == me;
        if (mine && rec[0] == v && !rec[3] ? ts_move(&sc, S_CREATE, n, 0, 0) : inert(&sc)) return 1;
        if (mine ? ts_move(&sc, S_FREE, n, 1, 0) : inert(&sc)) return 1;
        int freeable = mine || (alive && s->k[n][C_] == c->ts_me);
        if (freeable ? ts_move(&sc, S_FREE2, n, 1, 0) : inert(&sc))
            return 1;
        int killable = alive && rec && rec[2] != ST_FREE && !rec[3] &&
                       (me == rec[1] || me == -1 || me == n || rec[1] == -1);
        if (killable) {
            if (ts_move(&sc, S_KILL, n, 1, 1) || ts_move(&sc, S_KILL_REC, n, 1, 1)) return 1;
        } else if (inert(&sc) || inert(&sc)) {
            return 1;
        }
        V code = code_of(s->own[n]);
        if (code == (me & 255) || code == 0) {
            if (rmgr_move(&sc, S_GET_TASK, n, 0) || rmgr_move(&sc, S_FREE_TASK, n, 1) ||
                rmgr_move(&sc, S_RMGR_NEW, n, 0))
                return 1;
        } else if (inert(&sc) || inert(&sc) || inert(&sc)) {
            return 1;
        }
        if (s->k[n][C_] == me ? kernel_move(&sc, S_TASK_NEW, n) : inert(&sc)) return 1;
        if (s->k[n][C_] == me &&
            (kernel_move(&sc, S_NIL_ME, n) || kernel_move(&sc, S_NIL_BACK, n)))
            return 1;
    }
    return 0;
}

/* The moves of state s in the reference's actions order (explore_fast.moves). */
static int moves(Ctx *x, const St *s, St *w, Sink *sink) {
    const Cfg *c = x->c;
    uint32_t i = 0;
    for (int si = 0; si < s->ns; si++) {
        const Srv *v = &s->lx[si];
        V killed[MAXP];
        int nk = 0;
        for (int pi = 0; pi < v->np; pi++) {
            const Proc *p = &v->p[pi];
            if (p->zombie) continue;
            V pid = p->pid, task = p->task;
            int reap = 0;
            for (int q = 0; q < v->np; q++)
                if (v->p[q].parent == pid && v->p[q].zombie) reap = 1;
            if (reap) call(x, s, w, si, 3, task, 0);
            if (x->bad || sink->emit(sink, x, i++, reap ? w : NULL, 0)) return 1;
            if (v->np < c->processes) {
                call(x, s, w, si, 0, task, 0);
                if (x->bad || sink->emit(sink, x, i++, w, 0)) return 1;
            }
            if (pid != INIT_PID) {
                call(x, s, w, si, 1, task, 0);
                if (x->bad || sink->emit(sink, x, i++, w, 0)) return 1;
            }
            for (int q = 0; q < v->np; q++) {
                V victim = v->p[q].pid;
                if (victim == INIT_PID) continue;
                int done = 0;
                for (int j = 0; j < nk; j++)
                    if (killed[j] == victim) done = 1;
                if (v->p[q].zombie || done) {
                    if (sink->emit(sink, x, i++, NULL, 0)) return 1;
                } else {
                    killed[nk++] = victim;
                    call(x, s, w, si, 2, task, victim);
                    if (x->bad || sink->emit(sink, x, i++, w, 0)) return 1;
                }
            }
        }
    }
    for (int si = 0; si < s->ns; si++) {
        if (!(s->has_ts && s->k[c->ts_me][A_])) {
            BAD(x, "a server's exit with no task server (the reference computes it)");
            return 1;
        }
        shutdown_(x, s, w, si);
        if (x->bad || sink->emit(sink, x, i++, w, 0)) return 1;
    }
    if (c->script >= 0) {
        const V *row = s->k[c->script];
        if (row[A_] && row[E_] == EIP_SCRIPT && (script_moves(x, s, w, sink, &i) || x->bad))
            return 1;
    }
    return 0;
}

/* -- the module's functions ------------------------------------------------------------ */

static int read_ints(PyObject *seq, V *out, int max, int *len, const char *what) {
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast) return 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > max) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%s: %zd values, at most %d", what, n, max);
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return 0;
        }
        if (v < INT32_MIN || v > INT32_MAX) {
            Py_DECREF(fast);
            PyErr_Format(PyExc_OverflowError, "%s: %ld is beyond 32 bits", what, v);
            return 0;
        }
        out[i] = (V)v;
    }
    *len = (int)n;
    Py_DECREF(fast);
    return 1;
}

/* config (explore_core.config): T, ts_me, ts_first, nrec, quota, trusted mask, strategy,
 * cache_cap, processes, six fixes, window, inactive, rmgr_v, symmetry, pool_start,
 * invariant mask, script (-1: none), check_task_new, check_owner, clients... */
static int read_config(PyObject *obj, Cfg *c) {
    V a[64];
    int n = 0;
    if (!read_ints(obj, a, 64, &n, "config")) return 0;
    if (n < 25) {
        PyErr_SetString(PyExc_ValueError, "config: too few values");
        return 0;
    }
    memset(c, 0, sizeof *c);
    int at = 0;
    c->T = a[at++];
    c->ts_me = a[at++];
    c->ts_first = a[at++];
    c->nrec = a[at++];
    c->quota = a[at++];
    c->trusted = (uint32_t)a[at++];
    c->strategy = a[at++];
    c->cache_cap = a[at++];
    c->processes = a[at++];
    c->fix_task_new = a[at++];
    c->fix_refusal = a[at++];
    c->fix_free = a[at++];
    c->fix_free_task = a[at++];
    c->fix_kill = a[at++];
    c->fix_cache = a[at++];
    c->window = a[at++];
    c->inactive = a[at++];
    c->rmgr_v = a[at++];
    c->symmetry = a[at++];
    c->pool_start = a[at++];
    c->inv = (unsigned)a[at++];
    c->script = a[at++];
    c->check_task_new = a[at++];
    c->check_owner = a[at++];
    c->ncl = n - at;
    if (c->T < 6 || c->T > MAXT || c->ts_me < 0 || c->ts_me >= c->T || c->nrec < 0 ||
        c->ts_first + c->nrec > c->T || c->ncl < 1 || c->ncl > MAXS || c->strategy < 0 ||
        c->strategy > 2 || c->script >= c->T || c->pool_start < 5 || c->pool_start > c->T ||
        c->processes < 1 || c->processes > MAXP || c->cache_cap > MAXC) {
        PyErr_SetString(PyExc_ValueError, "config: beyond what the compiled core holds");
        return 0;
    }
    for (int i = 0; i < c->ncl; i++) {
        c->clients[i] = a[at + i];
        if (c->clients[i] < 5 || c->clients[i] >= c->T) {
            PyErr_SetString(PyExc_ValueError, "config: a client beyond the task numbers");
            return 0;
        }
    }
    /* the renamings: every permutation of the clients' numbers (identity only without
     * symmetry or with one client) */
    int perm[MAXS], count = (c->symmetry && c->ncl > 1) ? 1 : 0;
    if (count)
        for (int i = 2; i <= c->ncl; i++) count *= i;
    else
        count = 1;
    c->nperm = count;
    for (int i = 0; i < c->ncl; i++) perm[i] = i;
    for (int p = 0; p < count; p++) {
        for (int n = 0; n < c->T; n++) c->map[p][n] = n;
        for (int i = 0; i < c->ncl; i++) c->map[p][c->clients[i]] = c->clients[perm[i]];
        /* next permutation in lexicographic order */
        int i = c->ncl - 2;
        while (i >= 0 && perm[i] >= perm[i + 1]) i--;
        if (i < 0) break;
        int j = c->ncl - 1;
        while (perm[j] <= perm[i]) j--;
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        for (int l = i + 1, r = c->ncl - 1; l < r; l++, r--) {
            t = perm[l];
            perm[l] = perm[r];
            perm[r] = t;
        }
    }
    return 1;
}

static int read_state(PyObject *obj, const Cfg *c, St *s) {
    V *flat = malloc(sizeof(V) * MAXCODE);
    int n = 0, ok;
    if (!flat) {
        PyErr_NoMemory();
        return 0;
    }
    ok = read_ints(obj, flat, MAXCODE, &n, "state") && unflatten(c, flat, n, s);
    if (!ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "state: does not fit the config or the core");
    free(flat);
    return ok;
}

static PyObject *flat_list(const Cfg *c, const St *s) {
    V flat[4096];
    Vec f = {flat, 0, 4096};
    if (!flatten(c, s, &f)) return PyErr_Format(PyExc_ValueError, "state too large");
    PyObject *out = PyList_New(f.n);
    if (!out) return NULL;
    for (int i = 0; i < f.n; i++) {
        PyObject *v = PyLong_FromLong(f.a[i]);
        if (!v) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

/* -- a Walk on the core's own states (bytes): explore_core.CompiledOwnershipSpace ------ */

typedef struct {
    Cfg c;
    St s, w;
    Scratch sc;
    V flat[MAXCODE], cmp[2 * MAXCODE];
} Work;

/* scratch for one call with its config read; NULL with an exception set */
static Work *work_new(PyObject *cfg_obj) {
    Work *k = malloc(sizeof *k);
    if (!k) {
        PyErr_NoMemory();
        return NULL;
    }
    if (!read_config(cfg_obj, &k->c)) {
        free(k);
        return NULL;
    }
    return k;
}

/* config and a state as bytes (put_varints); NULL with an exception set if they are bad */
static Work *work_of(PyObject *cfg_obj, PyObject *state_obj) {
    Work *k = work_new(cfg_obj);
    if (!k) return NULL;
    char *data;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(state_obj, &data, &len) < 0) {
        free(k);
        return NULL;
    }
    size_t used =
        get_varints(&k->c, (const unsigned char *)data, (size_t)len, &k->s, k->flat, NULL);
    if (!used || used != (size_t)len) {
        free(k);
        PyErr_SetString(PyExc_ValueError, "state: not a state of this config");
        return NULL;
    }
    return k;
}

static PyObject *bytes_of(const Cfg *c, const St *s, V *flat) {
    Bytes b = {0};
    if (!put_varints(c, &b, s, flat, NULL)) {
        free(b.a);
        return PyErr_NoMemory();
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)b.a, (Py_ssize_t)b.n);
    free(b.a);
    return out;
}

static PyObject *py_encode(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cfg_obj, *state_obj, *out = NULL;
    if (!PyArg_ParseTuple(args, "OO", &cfg_obj, &state_obj)) return NULL;
    Work *k = work_new(cfg_obj);
    if (!k) return NULL;
    if (read_state(state_obj, &k->c, &k->s)) out = bytes_of(&k->c, &k->s, k->flat);
    free(k);
    return out;
}

static PyObject *py_decode(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cfg_obj, *state_obj;
    if (!PyArg_ParseTuple(args, "OO", &cfg_obj, &state_obj)) return NULL;
    Work *k = work_of(cfg_obj, state_obj);
    if (!k) return NULL;
    PyObject *out = flat_list(&k->c, &k->s);
    free(k);
    return out;
}

/* the moves of k's state as a list: (index, state after as bytes or a flat list, or None
 * when not built; whether a checked transition invariant broke) */
typedef struct {
    Sink base;
    const Cfg *c;
    V *flat;
    PyObject *list;
    int failed, as_bytes;
} OutSink;

static int out_emit(Sink *sink, Ctx *x, uint32_t index, St *after, int broken) {
    (void)x;
    OutSink *o = (OutSink *)sink;
    PyObject *state = !after        ? Py_NewRef(Py_None)
                      : o->as_bytes ? bytes_of(o->c, after, o->flat)
                                    : flat_list(o->c, after);
    PyObject *item = state ? Py_BuildValue("(INN)", index, state, PyBool_FromLong(broken)) : NULL;
    if (!item || PyList_Append(o->list, item) < 0) {
        Py_XDECREF(item);
        o->failed = 1;
        return 1;
    }
    Py_DECREF(item);
    return 0;
}

static PyObject *moves_list(Work *k, int as_bytes) {
    Ctx x = {&k->c, NULL, k->cmp};
    OutSink o = {{out_emit}, &k->c, k->flat, PyList_New(0), 0, as_bytes};
    PyObject *out = o.list;
    if (out) {
        moves(&x, &k->s, &k->w, &o.base);
        if (o.failed || x.bad) {
            Py_CLEAR(out);
            if (x.bad && !o.failed)
                PyErr_Format(PyExc_NotImplementedError,
                             "compiled core: %s; run with --engine python", x.bad);
        }
    }
    free(k);
    return out;
}

static PyObject *py_step(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cfg_obj, *state_obj;
    if (!PyArg_ParseTuple(args, "OO", &cfg_obj, &state_obj)) return NULL;
    Work *k = work_of(cfg_obj, state_obj);
    return k ? moves_list(k, 1) : NULL;
}

static PyObject *py_successors(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cfg_obj, *state_obj;
    if (!PyArg_ParseTuple(args, "OO", &cfg_obj, &state_obj)) return NULL;
    Work *k = work_new(cfg_obj);
    if (!k) return NULL;
    if (!read_state(state_obj, &k->c, &k->s)) {
        free(k);
        return NULL;
    }
    return moves_list(k, 0);
}

/* the verdict on k's state (what 2, 0 both), its fingerprint (what 1, 0 both); frees k */
static PyObject *judged(Work *k, int what) {
    if (!k) return NULL;
    Ctx x = {&k->c, NULL, NULL};
    int ok = what != 1 ? holds(&x, &k->s) : 0;
    uint64_t fp = what != 2 ? fingerprint(&x, &k->s, &k->sc) : 0;
    PyObject *out = NULL;
    if (x.bad)
        PyErr_Format(PyExc_NotImplementedError, "compiled core: %s", x.bad);
    else if (what == 0)
        out = Py_BuildValue("(NK)", PyBool_FromLong(ok), (unsigned long long)fp);
    else if (what == 1)
        out = PyLong_FromUnsignedLongLong(fp);
    else
        out = PyBool_FromLong(ok);
    free(k);
    return out;
}

static PyObject *py_check(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cfg_obj, *state_obj;
    if (!PyArg_ParseTuple(args, "OO", &cfg_obj, &state_obj)) return NULL;
    Work *k = work_new(cfg_obj);
    if (k && !read_state(state_obj, &k->c, &k->s)) {
        free(k);
        return NULL;
    }
    return judged(k, 0);
}

static PyObject *py_fingerprint(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cfg_obj, *state_obj;
    if (!PyArg_ParseTuple(args, "OO", &cfg_obj, &state_obj)) return NULL;
    return judged(work_of(cfg_obj, state_obj), 1);
}

static PyObject *py_holds(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cfg_obj, *state_obj;
    if (!PyArg_ParseTuple(args, "OO", &cfg_obj, &state_obj)) return NULL;
    return judged(work_of(cfg_obj, state_obj), 2);
}

typedef struct {
    Sink base;
    const Cfg *c;
    Seen *seen;
    Bytes *next;
    const Vec *ref;
    Scratch *sc;
    V *flat;
    uint64_t fp, found;
    long long transitions, pushed;
    int violated, oom, broken;
    uint32_t broken_index;
} SearchSink;

static int search_emit(Sink *sink, Ctx *x, uint32_t index, St *after, int broken) {
    SearchSink *ss = (SearchSink *)sink;
    ss->transitions++;
    if (broken) {
        ss->broken = 1;
        ss->broken_index = index;
        return 1;
    }
    if (!after) return 0;
    uint64_t fa = fingerprint(x, after, ss->sc);
    if (x->bad) return 1;
    int r = seen_add(ss->seen, fa, ss->fp, index);
    if (r < 0) {
        ss->oom = 1;
        return 1;
    }
    if (r == 0) return 0;
    if (!holds(x, after)) {
        ss->violated = 1;
        ss->found = fa;
        return 1;
    }
    if (x->bad) return 1;
    if (!push_state(ss->c, ss->next, after, fa, ss->flat, ss->ref)) {
        ss->oom = 1;
        return 1;
    }
    ss->pushed++;
    return 0;
}

static PyObject *py_explore(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *names[] = {"config", "state", "max_depth", "progress", NULL};
    PyObject *cfg_obj, *state_obj, *progress = Py_None;
    int max_depth = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|iO", names, &cfg_obj, &state_obj,
                                     &max_depth, &progress))
        return NULL;
    Cfg *c = malloc(sizeof *c);
    St *s = malloc(sizeof *s), *w = malloc(sizeof *w);
    Scratch *sc = malloc(sizeof *sc);
    V *flat = malloc(sizeof(V) * MAXCODE), *start = malloc(sizeof(V) * MAXCODE);
    V *cmp = malloc(sizeof(V) * 2 * MAXCODE);
    Vec ref = {start, 0, MAXCODE};
    Bytes cur = {0}, next = {0};
    Seen seen = {0};
    PyObject *out = NULL, *path = Py_None;
    Py_INCREF(path);
    if (!c || !s || !w || !sc || !flat || !start || !cmp || !seen_init(&seen, 1 << 16)) {
        PyErr_NoMemory();
        goto done;
    }
    if (!read_config(cfg_obj, c)) goto done;
    {
        int n = 0;
        if (!read_ints(state_obj, flat, MAXCODE, &n, "state")) goto done;
        if (!unflatten(c, flat, n, s)) {
            out = Py_BuildValue("{s:s}", "unsupported",
                                "a start state beyond the core's capacities");
            goto done;
        }
    }
    flatten(c, s, &ref); /* the reference the frontier's states are written against */
    Ctx x = {c, NULL, cmp};
    uint64_t fp0 = fingerprint(&x, s, sc);
    seen_add(&seen, fp0, 0, ROOT);
    long long transitions = 0, frontier_left = 0;
    int depth = 0, level = 0, complete = 1, violated = 0, on_transition = 0;
    int initial_ok = holds(&x, s);
    if (x.bad) goto unsupported;
    if (!initial_ok) {
        Py_DECREF(path);
        path = PyList_New(0);
        violated = 1;
        goto result;
    }
    if (!push_state(c, &cur, s, fp0, flat, &ref)) {
        PyErr_NoMemory();
        goto done;
    }
    long long in_frontier = 1;
    while (in_frontier) {
        if (max_depth >= 0 && level >= max_depth) {
            complete = 0;
            frontier_left = in_frontier;
            break;
        }
        level++;
        next.n = 0;
        long long pushed = 0, expanded = 0;
        size_t at = 0;
        while (at < cur.n) {
            uint64_t fp;
            size_t used = pop_state(c, cur.a + at, s, &fp, flat, &ref);
            if (!used) {
                BAD(&x, "a frontier state that does not read back");
                goto unsupported;
            }
            at += used;
            SearchSink ss = {.base = {search_emit}, .c = c, .seen = &seen, .next = &next,
                             .ref = &ref, .sc = sc, .flat = flat, .fp = fp};
            moves(&x, s, w, &ss.base);
            transitions += ss.transitions;
            pushed += ss.pushed;
            if (ss.oom) {
                PyErr_NoMemory();
                goto done;
            }
            if (x.bad) goto unsupported;
            if (ss.pushed) depth = level;
            if (ss.violated || ss.broken) {
                Py_DECREF(path);
                path = path_to(&seen, ss.broken ? fp : ss.found);
                if (!path) goto done;
                if (ss.broken) {
                    PyObject *last = PyLong_FromUnsignedLong(ss.broken_index);
                    int failed = !last || PyList_Append(path, last) < 0;
                    Py_XDECREF(last);
                    if (failed) goto done;
                    on_transition = 1;
                }
                violated = 1;
                goto result;
            }
            if ((++expanded & 4095) == 0 && PyErr_CheckSignals() < 0) goto done;
        }
        /* the states this level added are the next frontier */
        Bytes t = cur;
        cur = next;
        next = t;
        in_frontier = pushed;
        if (PyErr_CheckSignals() < 0) goto done;
        if (progress != Py_None) {
            PyObject *r = PyObject_CallFunction(progress, "iKL", level,
                                                (unsigned long long)seen.n, transitions);
            if (!r) goto done;
            Py_DECREF(r);
        }
    }
result:
    out = Py_BuildValue("{s:K,s:L,s:i,s:O,s:L,s:O,s:O,s:O}", "states",
                        (unsigned long long)seen.n, "transitions", transitions, "depth", depth,
                        "complete", (complete && !violated) ? Py_True : Py_False, "frontier",
                        frontier_left, "path", path, "on_transition",
                        on_transition ? Py_True : Py_False, "unsupported", Py_None);
    goto done;
unsupported:
    out = Py_BuildValue("{s:s}", "unsupported", x.bad ? x.bad : "unknown");
done:
    Py_XDECREF(path);
    seen_free(&seen);
    free(cur.a);
    free(next.a);
    free(c);
    free(s);
    free(w);
    free(sc);
    free(flat);
    free(start);
    free(cmp);
    return out;
}

static PyObject *constants(void) {
    PyObject *inv = PyTuple_New(NINV);
    if (!inv) return NULL;
    for (int i = 0; i < NINV; i++) PyTuple_SET_ITEM(inv, i, PyUnicode_FromString(INVARIANTS[i]));
    return Py_BuildValue(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:N,"
        "s:i,s:i,s:i,s:i,s:i}",
        "FREE", FREE_, "RESERVED", RESERVED_, "RMGR_TASK", RMGR, "NO_OWNER", NO_OWNER,
        "EIP_L4LINUX", EIP_L4, "EIP_PROCESS", EIP_PROC, "EIP_TASK_SERVER", EIP_TS,
        "KILLED_STATUS", KILLED, "INIT_PID", INIT_PID, "MAX_MCP", MAX_MCP, "VERSION_LOW",
        VERSION_LOW, "VERSIONS", VERSIONS, "PRIO_USER_PROCESS", PRIO_USER, "PRIO_SERVER_PROC",
        PRIO_SERVER, "FIRST_USER_TASK", FIRST_NUMBER, "SIGMA0_TASK", SIGMA0, "EIP_SCRIPT",
        EIP_SCRIPT, "MAXT", MAXT, "MAXS", MAXS,
        "INVARIANTS", inv, "MAXP", MAXP, "MAXC", MAXC, "MAXR", MAXR, "MAXV", MAXV, "ST_CHIEF",
        ST_CHIEF);
}

static PyMethodDef methods[] = {
    {"explore", (PyCFunction)(void (*)(void))py_explore, METH_VARARGS | METH_KEYWORDS,
     "explore(config, state, max_depth=-1, progress=None) -> dict: the breadth-first search."},
    {"successors", py_successors, METH_VARARGS,
     "successors(config, state) -> [(move index, flat state or None)]: one state's moves."},
    {"check", py_check, METH_VARARGS,
     "check(config, state) -> (invariants hold, 64-bit fingerprint)."},
    {"encode", py_encode, METH_VARARGS, "encode(config, flat state) -> the state as bytes."},
    {"decode", py_decode, METH_VARARGS, "decode(config, bytes) -> the flat state."},
    {"step", py_step, METH_VARARGS,
     "step(config, bytes) -> [(move index, bytes or None)]: one state's moves."},
    {"fingerprint", py_fingerprint, METH_VARARGS,
     "fingerprint(config, bytes) -> the 64-bit fingerprint of the state's class."},
    {"holds", py_holds, METH_VARARGS,
     "holds(config, bytes) -> whether the config's invariants hold in the state."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_explore_core",
    "The compiled core of the fast explorer (protocols/explore_core.py wraps it).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__explore_core(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyObject *k = constants();
    if (!k || PyModule_AddObject(m, "CONSTANTS", k) < 0) {
        Py_XDECREF(k);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
