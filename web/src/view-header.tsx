/** The title bar of the run and race views: a way back (when there is one), the title, where the data came from. */

export function ViewHeader(props: { title: string; note: string; back: string | null }) {
  return (
    <header>
      {props.back !== null ? (
        <a href={props.back} class="back">
          ← matrix
        </a>
      ) : null}
      <h1>{props.title}</h1>
      <span class="note">{props.note}</span>
    </header>
  );
}
